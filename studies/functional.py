"""Functional distance between architectures: is the space denser than it looks?

Two architectures one edit apart (one decision changed, e.g. ``nor_conv_3x3`` -> ``nor_conv_1x1`` on one
NB201 edge) are structurally as close as two distinct architectures can be. Are they also close as
functions? We train both (the calibrated CPU protocol of ``studies/calibration.json``, through the
train evaluator's own data loading, builder and training loop) and compare their penultimate features
(the input of the final linear classifier) on a probe of held-out images with linear CKA
(Kornblith, Norouzi, Lee & Hinton 2019, "Similarity of Neural Network Representations Revisited",
ICML; CKA with a linear kernel, Sec. 3, closed form in their Table 1):

    CKA(X, Y) = ||Yᵀ X||_F² / (||Xᵀ X||_F ||Yᵀ Y||_F),  X, Y column-centred (n × d₁, n × d₂),

and report the functional distance 1 − CKA. Training noise alone moves a network: the **floor** is the
CKA between two trainings of the *same* architecture with different seeds. A one-edit pair is compared
across different seeds too (a@sᵢ vs b@sⱼ, i ≠ j: every ordered seed pair), so both numbers carry the
seed noise and differ only by the edit. ``ratio`` = mean one-edit distance / floor distance: near 1, a
one-edit change moves the function no more than retraining does (neighbours are functionally the same
point, and the space is denser than its cardinality says); well above 1, an edit is a real move.

``nasatlas analyze functional`` JSON keys: ``space``, ``protocol`` (data, net, epochs), ``seeds``,
``probe``, ``floor_cka`` (``mean``, ``sd``, ``n``: pooled same-architecture, different-seed CKAs of both
architectures of every pair), ``pairs`` (one per pair: ``arch_a``, ``arch_b``, ``decision``, ``options``,
``structural_distance``, ``cka_mean``, ``cka_sd``, ``distance_mean`` = 1 − ``cka_mean``, ``floor_cka_mean``),
``mean_functional_distance_one_edit``, ``floor_distance`` (1 − floor mean), ``ratio``, ``seconds``.
``--out DIR`` also writes ``functional_pairs.csv`` and ``functional_cka.png`` (1 − CKA against the edit
distance: 0 for the floor, 1 for the pairs). The report section ``functional`` (:func:`functional_section`)
runs the same measurement on a study's space: unlike the other analyses it trains networks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from itertools import combinations, permutations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["linear_cka", "penultimate_features", "calibrated_settings", "load_protocol_data", "probe_inputs",
           "train_model", "functional_distance", "one_edit_pairs", "functional_vs_structural", "summarise", "measure",
           "functional_section"]


# -- linear CKA ---------------------------------------------------------------------------------------

def linear_cka(x: Any, y: Any) -> float:
    """Linear CKA of two feature matrices over the same ``n`` examples (rows), Kornblith et al. 2019.

    Columns are centred first. Computed as ||YᵀX||_F² / (||XᵀX||_F ||YᵀY||_F) in feature space, or as
    ⟨XXᵀ, YYᵀ⟩ / (||XXᵀ||_F ||YYᵀ||_F) in example space when there are more features than examples
    (the same number). 1 for identical representations up to an orthogonal transform and isotropic
    scaling; in [0, 1].
    """
    xm, ym = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xm.ndim != 2 or ym.ndim != 2:
        raise ValueError(f"linear_cka needs 2-d feature matrices (examples x features); got shapes {xm.shape} "
                         f"and {ym.shape}")
    if xm.shape[0] != ym.shape[0]:
        raise ValueError(f"linear_cka: X has {xm.shape[0]} examples but Y has {ym.shape[0]}; give features of the "
                         "same probe examples, in the same order")
    if xm.shape[0] < 2:
        raise ValueError(f"linear_cka needs at least 2 examples; got {xm.shape[0]}")
    if not (np.isfinite(xm).all() and np.isfinite(ym).all()):
        raise ValueError("linear_cka: the features contain NaN or inf")
    xm = xm - xm.mean(axis=0)
    ym = ym - ym.mean(axis=0)
    if max(xm.shape[1], ym.shape[1]) > xm.shape[0]:
        k, l_ = xm @ xm.T, ym @ ym.T
        num, den = float((k * l_).sum()), float(np.linalg.norm(k) * np.linalg.norm(l_))
    else:
        num = float(np.linalg.norm(ym.T @ xm) ** 2)
        den = float(np.linalg.norm(xm.T @ xm) * np.linalg.norm(ym.T @ ym))
    if den <= 0.0:
        raise ValueError("linear_cka is undefined: a feature matrix is constant over the examples (zero after "
                         "centring); check the network's features or give a probe with varied examples")
    return num / den


# -- features -----------------------------------------------------------------------------------------

def _classifier(model: Any) -> Any:
    """The final linear classifier: ``model.classifier`` when it is an ``nn.Linear``, else the last
    ``nn.Linear`` outside an auxiliary head."""
    from torch import nn
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Linear):
        return head
    linears = [m for name, m in model.named_modules() if isinstance(m, nn.Linear) and "auxiliary" not in name]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier whose input could be hooked; "
                         "penultimate features need a network ending in a linear layer")
    return linears[-1]


def penultimate_features(model: Any, x: Any, *, batch_size: int = 512) -> np.ndarray:
    """The input of the network's final linear classifier for every row of ``x``, as an ``(n, d)`` float64
    array, in eval and inference mode (a forward hook on the classifier; the model is left as it was
    apart from ``eval()``)."""
    import torch
    layer = _classifier(model)
    captured: list[Any] = []

    def hook(_mod: Any, inputs: tuple[Any, ...], _out: Any) -> None:
        captured.append(inputs[0].detach().flatten(1).to("cpu", torch.float64))

    handle = layer.register_forward_hook(hook)
    model.eval()
    try:
        with torch.inference_mode():
            batches = 0
            for s in range(0, int(x.shape[0]), batch_size):
                model(x[s:s + batch_size])
                batches += 1
    finally:
        handle.remove()
    if len(captured) != batches:
        raise ValueError(f"the classifier ran {len(captured)} times for {batches} batches; the network does not "
                         "apply its final linear layer once per forward pass")
    return torch.cat(captured).numpy() if captured else np.zeros((0, layer.in_features))


# -- the protocol ------------------------------------------------------------------------------------

def calibrated_settings() -> dict[str, Any]:
    """The calibrated CPU protocol (``studies/calibration.json``): ``{"data", "net", "epochs"}``."""
    from .calibration import calibrated_protocol
    p = calibrated_protocol()["protocol"]
    return {"data": dict(p["data"]), "net": dict(p["net"]), "epochs": int(p["epochs"])}


def load_protocol_data(protocol: Mapping[str, Any]) -> Any:
    """The protocol's classification data as the train evaluator loads it (grey images to 3 channels)."""
    from nasatlas.evaluators.data import load_data, three_channel
    spec = dict(protocol.get("data") or {})
    name = spec.pop("name", None)
    if not name:
        raise ValueError("protocol['data'] needs a name, e.g. {'name': 'digits', 'resize': 16}")
    data = load_data(str(name), **spec)
    if not hasattr(data, "y_test") or data.x_train.ndim != 4:
        raise ValueError(f"protocol data {name!r} is not a classification set; functional distance compares "
                         "classifier features")
    return three_channel(data)


def probe_inputs(data: Any, n: int) -> Any:
    """The first ``n`` held-out images (the test split, then the validation split): never trained on."""
    import torch
    held = torch.cat([data.x_test, data.x_valid])
    if not 2 <= n <= held.shape[0]:
        raise ValueError(f"probe={n}: the data hold {held.shape[0]} held-out images (test + validation); give "
                         f"2 <= probe <= {held.shape[0]}")
    return held[:n]


def train_model(space: Any, row: np.ndarray, seed: int, protocol: Mapping[str, Any], data: Any, *,
                device: str = "cpu") -> Any:
    """Build and train one network exactly as the ``train`` evaluator does for ``(arch, seed)`` under this
    protocol (same builder, scoped seeding, RNG and ``train_network`` loop and settings), and return it.
    ``data`` (:func:`load_protocol_data`) must already be on ``device``."""
    from nasatlas.evaluators.base import resolve_device, seeded
    from nasatlas.evaluators.train import TRAIN_DEFAULTS, train_network
    from nasatlas.spaces.build import build
    epochs = protocol.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"protocol['epochs']={epochs!r} must be an integer >= 1")
    dev = resolve_device(device)
    net = {**dict(protocol.get("net") or {}), "num_classes": data.num_classes, "input": tuple(data.input_shape)}
    settings = {**TRAIN_DEFAULTS["classification"], **dict(protocol.get("train") or {})}
    rng = np.random.default_rng(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
    with seeded(seed, dev):
        model = build(space, space.arch(row), net).to(dev)
        train_network(model, data, epochs=epochs, rng=rng, device=dev, **settings)
    return model


# -- pairs --------------------------------------------------------------------------------------------

def functional_distance(space: Any, row_a: np.ndarray, row_b: np.ndarray, seeds: Sequence[int],
                        protocol: Mapping[str, Any], *, data: Any = None, probe: int = 512,
                        device: str = "cpu") -> dict[str, Any]:
    """Train ``row_a`` and ``row_b`` once per seed and compare their penultimate features on the probe.

    Returns ``cka`` (a@sᵢ vs b@sⱼ for every ordered seed pair i ≠ j), ``cka_mean``, ``cka_sd`` (sample sd,
    0 for one value), ``distance_mean`` = 1 − ``cka_mean``, ``floor_cka`` (a@sᵢ vs a@sⱼ and b@sᵢ vs b@sⱼ,
    i < j), ``floor_cka_mean``, and the ``structural_distance`` (edit) and ``hamming`` distances.
    ``data`` (loaded once by the caller, on ``device``) defaults to the protocol's.
    """
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds}: give at least 2 distinct training seeds (the floor compares trainings of "
                         "one architecture with different seeds)")
    from nasatlas.evaluators.base import resolve_device
    device = resolve_device(device)
    data = load_protocol_data(protocol).to(device) if data is None else data
    x = probe_inputs(data, probe)
    feats = {k: [penultimate_features(train_model(space, r, s, protocol, data, device=device), x) for s in seeds]
             for k, r in (("a", row_a), ("b", row_b))}
    cross = [linear_cka(feats["a"][i], feats["b"][j]) for i, j in permutations(range(len(seeds)), 2)]
    floor = [linear_cka(feats[k][i], feats[k][j]) for k in "ab" for i, j in combinations(range(len(seeds)), 2)]
    ra, rb = np.asarray(row_a, dtype=np.int64), np.asarray(row_b, dtype=np.int64)
    return {"cka": cross, "cka_mean": float(np.mean(cross)),
            "cka_sd": float(np.std(cross, ddof=1)) if len(cross) > 1 else 0.0,
            "distance_mean": 1.0 - float(np.mean(cross)), "floor_cka": floor,
            "floor_cka_mean": float(np.mean(floor)),
            "structural_distance": int(space.distance(ra, rb, kind="edit")),
            "hamming": int(space.distance(ra, rb, kind="hamming"))}


def one_edit_pairs(space: Any, rng: np.random.Generator, n: int, *, over: str = "nominal") -> pd.DataFrame:
    """``n`` pairs (a, b): a uniform architecture (``space.sample(rng, 1, over)``) and a uniform one of its
    one-edit neighbours (``space.neighbours``). Columns ``arch_a``, ``arch_b`` (strings), ``decision`` (the
    changed decision(s)) and ``options`` (``old -> new`` per changed decision)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r}: the number of pairs must be an integer >= 1")
    out = []
    for _ in range(n):
        for _attempt in range(1000):
            a = space.sample(rng, 1, over=over)[0]
            nbs = space.neighbours(a)
            if len(nbs):
                break
        else:
            raise ValueError(f"space {space.name!r}: 1,000 sampled architectures had no one-edit neighbour")
        b = nbs[int(rng.integers(len(nbs)))]
        changed = np.flatnonzero(a != b)
        out.append({"arch_a": space.to_str(a), "arch_b": space.to_str(b),
                    "decision": ", ".join(space.decisions[j].name for j in changed),
                    "options": ", ".join(f"{space.decisions[j].choices[a[j]]} -> {space.decisions[j].choices[b[j]]}"
                                         for j in changed)})
    return pd.DataFrame(out, columns=["arch_a", "arch_b", "decision", "options"])


def functional_vs_structural(space: Any, rng: np.random.Generator, n_pairs: int, seeds: Sequence[int],
                             protocol: Mapping[str, Any], *, probe: int = 512, device: str = "cpu") -> pd.DataFrame:
    """:func:`functional_distance` of ``n_pairs`` :func:`one_edit_pairs`: one row per pair with the pair's
    columns, ``structural_distance``, ``hamming``, ``cka_mean``, ``cka_sd``, ``distance_mean``,
    ``floor_cka_mean`` and the raw ``cka`` and ``floor_cka`` lists."""
    from nasatlas.evaluators.base import resolve_device
    device = resolve_device(device)
    data = load_protocol_data(protocol).to(device)
    probe_inputs(data, probe)                               # fail before training on a bad probe size
    pairs = one_edit_pairs(space, rng, n_pairs)
    rows = []
    for p in pairs.itertuples(index=False):
        fd = functional_distance(space, np.asarray(space.from_str(p.arch_a).indices),
                                 np.asarray(space.from_str(p.arch_b).indices), seeds, protocol, data=data,
                                 probe=probe, device=device)
        rows.append({**p._asdict(), **fd})
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict[str, Any]:
    """The CLI's summary of :func:`functional_vs_structural`: the pooled floor, the pairs, the mean
    one-edit functional distance, the floor distance and their ratio."""
    if table.empty:
        raise ValueError("no pairs to summarise; give n_pairs >= 1")
    floor = np.concatenate([np.asarray(v, dtype=float) for v in table["floor_cka"]])
    floor_mean = float(floor.mean())
    floor_distance = 1.0 - floor_mean
    one_edit = float(table["distance_mean"].mean())
    if floor_distance <= 0:
        raise ValueError("the floor distance is 0 (different seeds gave identical features), so the ratio is "
                         "undefined; check that the seeds differ and training is seeded by them")
    keys = ("arch_a", "arch_b", "decision", "options", "structural_distance", "cka_mean", "cka_sd", "distance_mean",
            "floor_cka_mean")
    return {"floor_cka": {"mean": floor_mean, "sd": float(floor.std(ddof=1)) if len(floor) > 1 else 0.0,
                          "n": int(len(floor))},
            "pairs": [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items() if k in keys}
                      for r in table.to_dict("records")],
            "mean_functional_distance_one_edit": one_edit, "floor_distance": floor_distance,
            "ratio": one_edit / floor_distance}


def _plot(table: pd.DataFrame, path: Path) -> Path | None:
    """1 − CKA against structural distance: 0 = same architecture, other seed (the floor); 1 = one edit."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return None
    floor = 1.0 - np.concatenate([np.asarray(v, dtype=float) for v in table["floor_cka"]])
    cross = 1.0 - np.concatenate([np.asarray(v, dtype=float) for v in table["cka"]])
    dist = np.repeat(table["structural_distance"].to_numpy(), [len(v) for v in table["cka"]])
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    ax.scatter(np.zeros(len(floor)) + np.linspace(-0.08, 0.08, len(floor)), floor, s=14, alpha=0.7,
               label="same architecture, other seed")
    ax.scatter(dist + np.linspace(-0.08, 0.08, len(cross)), cross, s=14, alpha=0.7, label="one edit, other seed")
    ax.plot([0, float(np.mean(dist))], [floor.mean(), cross.mean()], "k-o", ms=5, label="means")
    ax.set_xlabel("structural (edit) distance")
    ax.set_ylabel("functional distance 1 − linear CKA")
    ax.set_xticks(sorted({0, *dist.tolist()}))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# -- nasatlas analyze functional ----------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    """Options of ``nasatlas analyze functional``."""
    p.add_argument("--space", required=True, help="a registered space or a declaration file (buildable)")
    p.add_argument("--pairs", type=int, default=4, help="one-edit pairs to train and compare")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per architecture (>= 2)")
    p.add_argument("--epochs", type=int, default=None, help="override the calibrated protocol's epochs")
    p.add_argument("--probe", type=int, default=512, help="held-out images whose features are compared")
    p.add_argument("--seed", type=int, default=0, help="root seed: pair sampling and the training seeds")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default=None, help="also write functional_pairs.csv and functional_cka.png here")
    p.add_argument("--json", action="store_true")


def measure(space: Any, *, pairs: int = 4, seeds: int = 3, epochs: int | None = None, probe: int = 512,
            seed: int = 0, device: str = "cpu") -> tuple[dict[str, Any], pd.DataFrame]:
    """The whole measurement under the calibrated protocol (``epochs`` overrides its epochs): the pair
    sampler and the ``seeds`` training seeds come from ``SeedSequence(seed)``. Returns the summary (the
    CLI's JSON) and the per-pair table."""
    for name, value, least in (("pairs", pairs, 1), ("seeds", seeds, 2), ("epochs", epochs, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ValueError(f"{name}={value!r}: give an integer >= {least}"
                             + (" (the floor compares two seeds of one architecture)" if name == "seeds" else ""))
    protocol = calibrated_settings()
    if epochs is not None:
        protocol["epochs"] = int(epochs)
    pair_ss, train_ss = np.random.SeedSequence(seed).spawn(2)
    seed_list = [int(s) for s in train_ss.generate_state(seeds, dtype=np.uint32)]
    t0 = time.perf_counter()
    table = functional_vs_structural(space, np.random.default_rng(pair_ss), pairs, seed_list, protocol,
                                     probe=probe, device=device)
    return ({"space": space.name, "protocol": protocol, "seeds": seed_list, "probe": probe, **summarise(table),
             "seconds": round(time.perf_counter() - t0, 2)}, table)


def _write(table: pd.DataFrame, out_dir: Path) -> Path | None:
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "functional_pairs.csv", index=False)
    return _plot(table, out_dir / "functional_cka.png")


def run_cli(args: Any) -> dict[str, Any]:
    """``nasatlas analyze functional``: the keys listed in the module docstring."""
    from nasatlas.spaces.declaration import load_space
    for flag, value, least in (("--pairs", args.pairs, 1), ("--seeds", args.seeds, 2), ("--epochs", args.epochs, 1)):
        if value is not None and value < least:
            raise ValueError(f"{flag} {value}: give at least {least}")
    out, table = measure(load_space(args.space), pairs=args.pairs, seeds=args.seeds, epochs=args.epochs,
                         probe=args.probe, seed=args.seed, device=args.device)
    if args.out:
        _write(table, Path(args.out))
    return out


#: ``[analysis.functional]`` keys and types
_SECTION_PARAMS: dict[str, type] = {"pairs": int, "seeds": int, "epochs": int, "probe": int, "seed": int,
                                    "device": str}


def functional_section(df: pd.DataFrame, study: dict[str, Any], run_dir: Any = None) -> str:
    """Report section ``functional``: :func:`measure` on the study's space (it trains: 2 x pairs x seeds
    networks under the calibrated protocol; the run's log is not used), with ``functional_pairs.csv`` and
    ``functional_cka.png`` in the run directory. ``[analysis.functional]``: ``pairs`` (4), ``seeds`` (3),
    ``epochs`` (the calibrated protocol's), ``probe`` (512), ``seed`` (the study's), ``device``
    (``cpu``)."""
    from .analyses import section_params
    from .studyfile import study_space
    params = section_params(study, "functional", _SECTION_PARAMS)
    space = study_space(study)
    params.setdefault("seed", int(study.get("study", {}).get("seed", 0)))
    out, table = measure(space, **params)
    png = _write(table, Path(run_dir)) if run_dir is not None else None
    p = out["protocol"]
    lines = ["## Is the space denser than it looks? (functional distance)", "",
             f"{len(table)} random one-edit pairs of `{space.name}`, each architecture trained with "
             f"{len(out['seeds'])} seeds (data {p['data']}, net {p['net']}, {p['epochs']} epochs); "
             f"functional distance = 1 − linear CKA (Kornblith et al. 2019) of the classifier's input features on "
             f"{out['probe']} held-out images, always between different seeds. Floor (same architecture, other "
             f"seed): CKA {out['floor_cka']['mean']:.3f} ± {out['floor_cka']['sd']:.3f} (n = {out['floor_cka']['n']}),"
             f" distance {out['floor_distance']:.3f}. One edit: mean distance "
             f"{out['mean_functional_distance_one_edit']:.3f}, **{out['ratio']:.2f}×** the floor "
             "(≈ 1: an edit moves the function no more than retraining does).", "",
             "| changed decision | options | CKA mean ± sd | distance | floor CKA of the pair |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['decision']} | {r['options']} | {r['cka_mean']:.3f} ± {r['cka_sd']:.3f} | {r['distance_mean']:.3f}"
              f" | {r['floor_cka_mean']:.3f} |" for r in out["pairs"]]
    if png is not None:
        lines += ["", f"![functional vs structural distance]({png.name})"]
    return "\n".join(lines) + "\n"
