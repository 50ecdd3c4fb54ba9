"""BANANAS: Bayesian optimisation with an ensemble of neural predictors on the path encoding.

White, Neiswanger & Savani 2021, "BANANAS: Bayesian Optimization with Neural Architectures for
Neural Architecture Search" (AAAI), Sec. 4 (path encoding), Sec. 5 (the five components and the
algorithm, Algorithm 1) and Appendix (predictor settings). One iteration:

1. train an ensemble of ``ensemble_size`` = 5 feed-forward networks on every architecture told so
   far (failed evaluations are excluded, never read as zero), each from its own initialisation
   and minibatch order;
2. make ``n_candidates`` = 100 candidates by mutating the ``n_parents`` best architectures
   (``max_mutations`` = 1 random one-edit change each, the space's ``neighbours``), leaving out
   architectures already proposed (isomorphism-aware, by ``canonical_id``, as the official code
   removes isomorphic duplicates by path indices);
3. score them with independent Thompson sampling (ITS, Sec. 5: one draw per candidate from a
   Gaussian with the ensemble's mean and standard deviation; the default) or UCB
   (``mean - explore_factor * std`` on the minimised target, factor 0.5 as in the official code);
4. queue the ``k`` = 10 best-ranked candidates; they are proposed one by one before the ensemble
   is refitted (the paper's batch of ``k`` per iteration).

The first ``n_init`` = 10 proposals are uniform random samples (distinct up to isomorphism), and
so is every proposal made while no successful result has been told (nothing to fit yet). When
the parents' mutations give fewer than ``k`` new candidates, random unseen architectures fill in.

Warm start (a nasatlas extension, not in the paper). ``warm_start`` names a predictor saved by the
``predictors`` study (``nasatlas.evaluators.predictor_eval.save_predictor``: a ``.npz`` file with a JSON
header, read without pickle). When it is set, ``start`` loads the file and draws, from the searcher's
generator, a pool of ``n_candidates`` uniform random architectures, distinct up to isomorphism; they are
encoded with the encoding the file records (``meta["encoding"]``, through ``nasatlas.spaces.encodings``,
independent of the ensemble's own ``encoding``), scored by the loaded predictor, and ranked best first. The
initial proposals (the first ``n_init``, and any made while no successful result has been told) are then
taken from that ranking instead of being uniform random; once the pool is used up they are random again.
"Best" is the searcher's own direction when the file's ``metric`` is the searcher's objective (the
predictor's order, negated when the file's ``mode`` differs from the searcher's), and the file's ``mode``
otherwise (a predictor of another metric is used as a proxy in its own direction); ties and non-finite
predictions keep the draw order, non-finite ones last. Everything after the initial proposals is BANANAS
as above: the ensemble is fitted on told results only, never on the loaded predictor's outputs. A missing or
unreadable file, a predictor of another space, or one whose feature width the space's encoding does not
give is a ValueError naming ``warm_start``. ``warm_start=None`` (the default) leaves every draw and proposal
exactly as without this option.

Design change: loading the file must not import ``nasatlas.evaluators`` (searchers import only
``nasatlas.spaces`` and ``nasatlas.results``, DESIGN §3), so the file format's reader and the numpy
prediction rules moved from ``evaluators/predictor_eval.py`` to ``nasatlas.results.predictor_file``;
the evaluators module re-exports them and keeps fitting and saving.

Predictor settings (defaults; official ``naszilla/bananas`` ``meta_neural_net.py`` and
``params.py`` checked with NASLib's ``optimizers/discrete/bananas``): 10 dense ReLU layers of
width 20, a linear output, Glorot-uniform weights and zero biases (Keras's defaults, which the
official code uses), Adam with learning rate 0.01 and betas (0.9, 0.99), batch size 32, 200
epochs (the official ``fit`` default; the later naszilla ``standard`` preset trains 150), loss
MAPE against a lower bound: the official ``mape_loss`` is ``|(pred - lb) / (y - lb) - 1|`` on the
validation error ``y`` with ``lb`` = 4.5 % below every reachable error. Here the target is the
error-like ``e = -objective`` and, so that the bound fits any metric's scale, it is set from the
data: ``lb = min(e) - mape_margin * (max(e) - min(e))`` (``mape_margin`` = 0.1), and the network
fits ``(e - lb) / (max(e) - min(e))``. ``loss="mae"`` (the naszilla ``standard`` preset) fits the
same target with an absolute error. Candidates: 100, mutating the 2 best with 1 mutation each
(NASLib's defaults; the official code mutates the best architectures until 100 unique candidates
exist).

Encoding. ``encoding="auto"`` uses the path encoding (Sec. 4) of every graph block (NB201 edge
DAG, DARTS/NASNet cells, NB101) and the one-hot encoding of the blocks that have no paths
(chains, the trellis, plain categoricals); a space without any graph block, or whose path
vocabulary is larger than ``max_path_features``, falls back to the one-hot encoding of the
whole space. ``self.encoding_used`` says which was used. ``"path"`` insists on paths (error if
there are none), ``"onehot"`` never uses them.

Implementation. The 5 networks are trained together as one batched model (weights stacked on a
leading ensemble axis, ``torch.baddbmm``, all of them views of one flat parameter tensor); Adam
is elementwise, so this is exactly 5 independent trainings with one optimiser update per step.
It runs on one intra-op thread (the matrices are tiny; restored after). Training runs inside ``torch.random.fork_rng()``
with ``torch.manual_seed`` and an explicit ``torch.Generator``, both seeded from ``self.rng``:
nothing leaks into or reads from torch's global generator. The network is refitted from the
told data each iteration, so ``state_dict`` holds only data (told results, the queue, the
generator's state) and resuming reproduces the run. Cost: one fit per ``k`` proposals;
``benchmarks/bench_model_searchers.py`` reports the amortised ask+tell time per evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from nasatlas.results import EvalResult
from nasatlas.results.predictor_file import LoadedPredictor, load_predictor
from nasatlas.spaces.encodings import encode, onehot, path_encoding

from .base import BlackBoxSearcher, Proposal, objective_value, rng_state, set_rng_state
from .capabilities import check_requires

__all__ = ["Bananas", "fit_ensemble"]

ACQUISITIONS = ("its", "ucb")
ENCODINGS = ("auto", "path", "onehot")
LOSSES = ("mape", "mae")


class Bananas(BlackBoxSearcher):
    """BANANAS with the paper's settings as defaults (see the module docstring).

    Args:
        n_init: random architectures before the first model.
        k: proposals per model fit (the batch of the acquisition ranking).
        n_candidates: candidates per iteration.
        n_parents: best architectures mutated to make the candidates.
        max_mutations: one-edit mutations applied to make each candidate.
        acquisition: ``"its"`` (independent Thompson sampling) or ``"ucb"``.
        explore_factor: UCB's weight of the ensemble's standard deviation.
        encoding: ``"auto"``, ``"path"`` or ``"onehot"``.
        max_path_features: largest path vocabulary ``"auto"`` accepts.
        ensemble_size, num_layers, layer_width, lr, epochs, batch_size: the predictor.
        loss: ``"mape"`` (against a lower bound, the paper's) or ``"mae"``.
        mape_margin: gap between the best target and the MAPE lower bound, as a fraction of the
            targets' range.
        warm_start: path of a predictor saved by ``save_predictor``; the initial proposals are the best
            of a pool of ``n_candidates`` random architectures by its predictions (module docstring).
            ``None``: uniform random initial proposals (the paper's).
    """

    requires = ("sample", "neighbours")

    def __init__(self, n_init: int = 10, k: int = 10, n_candidates: int = 100, n_parents: int = 2,
                 max_mutations: int = 1, acquisition: str = "its", explore_factor: float = 0.5,
                 encoding: str = "auto", max_path_features: int = 1 << 16, ensemble_size: int = 5,
                 num_layers: int = 10, layer_width: int = 20, lr: float = 0.01, epochs: int = 200,
                 batch_size: int = 32, loss: str = "mape", mape_margin: float = 0.1,
                 warm_start: str | None = None) -> None:
        self.n_init = n_init
        self.k = k
        self.n_candidates = n_candidates
        self.n_parents = n_parents
        self.max_mutations = max_mutations
        self.acquisition = acquisition
        self.explore_factor = explore_factor
        self.encoding = encoding
        self.max_path_features = max_path_features
        self.ensemble_size = ensemble_size
        self.num_layers = num_layers
        self.layer_width = layer_width
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.loss = loss
        self.mape_margin = mape_margin
        self.warm_start = warm_start

    # -- setup ------------------------------------------------------------------------------
    def _setup(self) -> None:
        for name in ("k", "n_candidates", "n_parents", "max_mutations", "ensemble_size", "num_layers",
                     "layer_width", "epochs", "batch_size", "max_path_features"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"bananas: {name}={v!r}; give an integer >= 1")
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, int) or self.n_init < 0:
            raise ValueError(f"bananas: n_init={self.n_init!r}; give an integer >= 0")
        if self.acquisition not in ACQUISITIONS:
            raise ValueError(f"bananas: acquisition={self.acquisition!r}; allowed: {list(ACQUISITIONS)}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"bananas: encoding={self.encoding!r}; allowed: {list(ENCODINGS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"bananas: loss={self.loss!r}; allowed: {list(LOSSES)}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"bananas: lr={self.lr!r}; give a positive learning rate")
        if not (self.mape_margin > 0 and np.isfinite(self.mape_margin)):
            raise ValueError(f"bananas: mape_margin={self.mape_margin!r}; give a positive fraction, e.g. 0.1")
        if not (self.explore_factor >= 0 and np.isfinite(self.explore_factor)):
            raise ValueError(f"bananas: explore_factor={self.explore_factor!r}; give a number >= 0")
        check_requires(self.space, self.requires, "bananas")
        self.encoding_used = self._choose_encoding()
        self._told: list[tuple[int, tuple[int, ...], float | None]] = []
        self._pending: dict[int, tuple[int, ...]] = {}
        self._queue: list[tuple[int, ...]] = []
        self._seen: set[str] = set()
        self._enc_cache: dict[tuple[int, ...], np.ndarray] = {}
        self.n_fits = 0
        #: warm start: the pool ranked best first, and the position of the next one to propose
        self.warm_ranked: list[tuple[int, ...]] = []
        self._warm_next = 0
        if self.warm_start is not None:
            self.warm_ranked = self._rank_pool(self._load_warm_start())

    # -- warm start -------------------------------------------------------------------------
    def _load_warm_start(self) -> LoadedPredictor:
        """The predictor file of ``warm_start``, checked against this space (ValueError naming ``warm_start``)."""
        path = self.warm_start
        if not isinstance(path, str) or not path:
            raise ValueError(f"bananas: warm_start={path!r}; give the path of a .npz predictor written by "
                             "save_predictor (e.g. a predictors run's predictor_rf.npz), or None")
        try:
            pred = load_predictor(path)
        except ValueError as e:
            raise ValueError(f"bananas: warm_start={path!r}: {e}") from None
        meta = pred.meta
        if meta.get("space") != self.space.name:
            raise ValueError(f"bananas: warm_start={path!r} was fitted on space {meta.get('space')!r}, not "
                             f"{self.space.name!r}; fit a predictor on this space (the predictors study) or drop "
                             "warm_start")
        if meta.get("mode", "max") not in ("max", "min"):
            raise ValueError(f"bananas: warm_start={path!r} records mode={meta.get('mode')!r}; a predictor file's "
                             "mode is 'max' or 'min'")
        return pred

    def _draw_pool(self, size: int, rounds: int = 20) -> list[tuple[int, ...]]:
        """Up to ``size`` uniform random unseen architectures, distinct up to isomorphism, from ``self.rng``
        (fewer only when ``rounds`` draws of the missing number add nothing new: a nearly exhausted space)."""
        exclude = set(self._seen)
        out: list[tuple[int, ...]] = []
        for _ in range(rounds):
            missing = size - len(out)
            if missing <= 0:
                break
            added = 0
            for row in self.space.sample(self.rng, missing):
                key = self._key(row)
                if key not in exclude:
                    exclude.add(key)
                    out.append(tuple(int(v) for v in row))
                    added += 1
            if added == 0:
                break
        return out

    def _rank_pool(self, pred: LoadedPredictor) -> list[tuple[int, ...]]:
        """Draw the warm-start pool and rank it best first by ``pred`` (module docstring)."""
        meta = pred.meta
        pool = self._draw_pool(self.n_candidates)
        if not pool:
            return []
        enc = str(meta.get("encoding"))
        try:
            x = np.asarray(encode(self.space, np.asarray(pool, dtype=np.int64), enc), dtype=np.float64)
        except ValueError as e:
            raise ValueError(f"bananas: warm_start={self.warm_start!r} uses the {enc!r} encoding, which space "
                             f"{self.space.name!r} does not give: {e}") from None
        if x.shape[1] != int(meta["n_features"]):
            raise ValueError(f"bananas: warm_start={self.warm_start!r} expects {meta['n_features']} {enc} features "
                             f"but space {self.space.name!r} gives {x.shape[1]}; the space's declaration differs "
                             "from the one the predictor was fitted on")
        file_sign = 1.0 if meta.get("mode", "max") == "max" else -1.0
        own_sign = 1.0 if self.mode == "max" else -1.0
        # the predictor's goodness, negated when it predicts the searcher's own objective in the other direction
        sign = own_sign if meta.get("metric") == self.objective else file_sign
        goodness = sign * np.asarray(pred.predict(x), dtype=np.float64)
        goodness[~np.isfinite(goodness)] = -np.inf
        order = np.argsort(-goodness, kind="stable")
        return [pool[i] for i in order]

    def _next_warm(self) -> tuple[int, ...] | None:
        while self._warm_next < len(self.warm_ranked):
            row = self.warm_ranked[self._warm_next]
            self._warm_next += 1
            if self._key(row) not in self._seen:
                return row
        return None

    def _choose_encoding(self) -> str:
        graph = [p for p in self.space.primitives if hasattr(p, "paths")]
        if self.encoding == "onehot":
            return "onehot"
        size: int = sum(int(p.path_vocabulary_size()) for p in graph)  # type: ignore[attr-defined,misc]
        if self.encoding == "path":
            if not graph:
                raise ValueError(f"bananas: encoding='path', but space {self.space.name!r} has no graph block, so no "
                                 "path encoding; use encoding='auto' (falls back to one-hot) or 'onehot'")
            return "path"
        if not graph or size > self.max_path_features:
            return "onehot"
        return "path"

    def _encode(self, rows: list[tuple[int, ...]]) -> np.ndarray:
        missing = [r for r in rows if r not in self._enc_cache]
        if missing:
            arr = np.asarray(missing, dtype=np.int64).reshape(len(missing), self.space.width)
            if self.encoding_used == "onehot":
                enc = onehot(self.space, arr)
            else:
                parts = [path_encoding(self.space, arr, max_size=max(self.max_path_features, 1))]
                for p, block in zip(self.space.primitives, self.space.blocks(arr)):
                    if not hasattr(p, "paths"):
                        parts.append(p.onehot(block))
                enc = np.concatenate(parts, axis=1)
            for r, e in zip(missing, enc):
                self._enc_cache[r] = e.astype(np.float32)
        return np.stack([self._enc_cache[r] for r in rows])

    # -- ask / tell -------------------------------------------------------------------------
    def _key(self, row: np.ndarray | tuple[int, ...]) -> str:
        return self.space.canonical_id(np.asarray(row, dtype=np.int64))

    def _random_unseen(self, exclude: set[str], tries: int = 1000) -> tuple[int, ...] | None:
        for _ in range(tries):
            row = self.space.sample(self.rng, 1)[0]
            if self._key(row) not in exclude:
                return tuple(int(v) for v in row)
        return None

    def ask(self, n: int = 1) -> list[Proposal]:
        out = []
        for _ in range(n):
            row: tuple[int, ...] | None
            if self.n_asked < self.n_init or not any(v is not None for _, _, v in self._told):
                row = self._next_warm() if self.warm_ranked else None
                if row is None:
                    row = self._random_unseen(self._seen)
            else:
                if not self._queue:
                    self._queue = self._next_batch()
                row = self._queue.pop(0) if self._queue else None
            if row is None:
                break  # the space is exhausted
            self._seen.add(self._key(row))
            prop = self._next(np.asarray(row))
            self._pending[prop.trial] = prop.row
            out.append(prop)
        return out

    def tell(self, proposal: Proposal, result: EvalResult) -> None:
        if proposal.trial not in self._pending:
            raise ValueError(f"bananas: trial {proposal.trial} is not pending: it was never asked of this searcher "
                             "or was already told")
        value = objective_value(result, self.objective, self.mode) if result.ok else None
        self._told.append((proposal.trial, self._pending.pop(proposal.trial), value))

    # -- one BANANAS iteration ------------------------------------------------------------
    def _candidates(self, data: list[tuple[tuple[int, ...], float]]) -> list[tuple[int, ...]]:
        order = sorted(range(len(data)), key=lambda i: -data[i][1])
        parents = [data[i][0] for i in order[:self.n_parents]]
        per_parent = max(1, self.n_candidates // len(parents))
        exclude = set(self._seen)
        out: list[tuple[int, ...]] = []
        nbr_cache: dict[tuple[int, ...], np.ndarray] = {}
        for parent in parents:
            for _ in range(per_parent):
                cur = parent
                for _m in range(self.max_mutations):
                    if cur not in nbr_cache:
                        nbr_cache[cur] = self.space.neighbours(np.asarray(cur, dtype=np.int64))
                    nbrs = nbr_cache[cur]
                    if len(nbrs) == 0:
                        break
                    cur = tuple(int(v) for v in nbrs[int(self.rng.integers(len(nbrs)))])
                key = self._key(cur)
                if key not in exclude:
                    exclude.add(key)
                    out.append(cur)
        # too few new mutants (the parents' neighbourhoods are used up): top up with random ones
        while len(out) < min(self.k, self.n_candidates):
            row = self._random_unseen(exclude)
            if row is None:
                break
            exclude.add(self._key(row))
            out.append(row)
        return out

    def _next_batch(self) -> list[tuple[int, ...]]:
        data = [(row, v) for _, row, v in self._told if v is not None]
        cands = self._candidates(data)
        if not cands:
            return []
        x_train = self._encode([r for r, _ in data])
        e = -np.asarray([v for _, v in data], dtype=np.float64)  # error-like: smaller is better
        scale = float(e.max() - e.min()) or max(abs(float(e.min())), 1.0)
        lb = float(e.min()) - self.mape_margin * scale
        y = ((e - lb) / scale).astype(np.float32)
        seed = int(self.rng.integers(0, 2**63 - 1))
        preds = fit_ensemble(x_train, y, self._encode(cands), seed=seed, ensemble_size=self.ensemble_size,
                             num_layers=self.num_layers, layer_width=self.layer_width, lr=self.lr,
                             epochs=self.epochs, batch_size=self.batch_size, loss=self.loss)
        self.n_fits += 1
        mean, std = preds.mean(axis=0), preds.std(axis=0)
        if self.acquisition == "its":
            score = self.rng.normal(mean, std)
        else:
            score = mean - self.explore_factor * std
        order = np.argsort(score, kind="stable")
        return [cands[i] for i in order[:self.k]]

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": rng_state(self.rng), "n_asked": self.n_asked, "n_fits": self.n_fits,
                                 "told": [[t, list(r), v] for t, r, v in self._told],
                                 "pending": [[t, list(r)] for t, r in sorted(self._pending.items())],
                                 "queue": [list(r) for r in self._queue], "seen": sorted(self._seen)}
        if self.warm_start is not None:
            state["warm_ranked"] = [list(r) for r in self.warm_ranked]
            state["warm_next"] = self._warm_next
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.n_asked = int(state["n_asked"])
        self.n_fits = int(state.get("n_fits", 0))
        self._told = [(int(t), tuple(int(x) for x in r), None if v is None else float(v)) for t, r, v in state["told"]]
        self._pending = {int(t): tuple(int(x) for x in r) for t, r in state["pending"]}
        self._queue = [tuple(int(x) for x in r) for r in state["queue"]]
        self._seen = set(state["seen"])
        if self.warm_start is not None and "warm_ranked" in state:
            self.warm_ranked = [tuple(int(x) for x in r) for r in state["warm_ranked"]]
            self._warm_next = int(state["warm_next"])


def fit_ensemble(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, seed: int, ensemble_size: int = 5,
                 num_layers: int = 10, layer_width: int = 20, lr: float = 0.01, epochs: int = 200,
                 batch_size: int = 32, loss: str = "mape") -> np.ndarray:
    """Train ``ensemble_size`` independent MLPs on ``(x_train, y_train)``; predict ``x_test``.

    Returns an ``(ensemble_size, len(x_test))`` array. ``loss="mape"`` needs positive targets
    (``|pred / y - 1|``); ``"mae"`` is ``|pred - y|``. Training runs on one intra-op thread (restored
    after), so the result is bitwise the same for a given ``seed`` whatever the caller's thread
    count; torch's global generator is neither read nor advanced.
    """
    import torch

    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r}; allowed: {list(LOSSES)}")
    if loss == "mape" and np.any(np.asarray(y_train) <= 0):
        raise ValueError("loss='mape' needs targets above the lower bound (all > 0)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest, and the result does not depend on the caller's
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = _train_predict(torch, x_train, y_train, x_test, seed, ensemble_size, num_layers, layer_width, lr,
                                 epochs, batch_size, loss)
    finally:
        torch.set_num_threads(threads)
    return out.detach().numpy().astype(np.float64)


def _train_predict(torch: Any, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int, e: int,
                   num_layers: int, layer_width: int, lr: float, epochs: int, batch_size: int, loss: str) -> Any:
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y_train, dtype=np.float32))
    n, d = x.shape
    dims = [d] + [layer_width] * num_layers + [1]
    shapes = [(e, a, b) for a, b in zip(dims[:-1], dims[1:])] + [(e, 1, b) for b in dims[1:]]
    sizes = [int(np.prod(s)) for s in shapes]
    # every weight and bias of the 5 networks in one flat leaf tensor: Adam is elementwise, so one
    # update of the flat tensor is exactly the per-parameter updates, without a Python loop over 22 tensors
    init = []
    for a, b in zip(dims[:-1], dims[1:]):
        bound = float(np.sqrt(6.0 / (a + b)))  # Glorot uniform, the Keras Dense default of the official code
        init.append(((torch.rand(e, a, b, generator=g) * 2 - 1) * bound).reshape(-1))
    init.extend(torch.zeros(e * b) for b in dims[1:])  # zero biases
    flat = torch.cat(init).requires_grad_()
    opt = torch.optim.Adam([flat], lr=lr, betas=(0.9, 0.99))
    n_layers = len(dims) - 1

    def forward(inp: Any) -> Any:
        parts = [t.view(s) for t, s in zip(torch.split(flat, sizes), shapes)]
        h = inp
        for i in range(n_layers):
            h = torch.baddbmm(parts[n_layers + i], h, parts[i])
            if i < n_layers - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    for _ in range(epochs):
        perms = torch.stack([torch.randperm(n, generator=g) for _ in range(e)])  # each member its own order
        for start in range(0, n, batch_size):
            idx = perms[:, start:start + batch_size]
            pred = forward(x[idx])  # (e, b)
            yb = y[idx]
            per = torch.abs(pred / yb - 1.0) if loss == "mape" else torch.abs(pred - yb)
            total = per.mean(dim=1).sum()  # each member's own mean loss; their gradients stay separate
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
    with torch.inference_mode():
        xt = torch.as_tensor(np.asarray(x_test, dtype=np.float32))
        return forward(xt.unsqueeze(0).expand(e, -1, -1)).detach()
