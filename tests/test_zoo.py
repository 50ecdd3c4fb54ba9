"""The zoo (spaces/zoo.py): every published entry is a member of its space, builds, and has the official counts.

Counts are compared two ways: with the exact official-code figures the builder tests already assert (their
sources are in tests/test_nets_darts_nb201.py, test_nets_tf.py, test_nets_autodeeplab.py, test_chain_net.py and
../shared/checks/acceptance.py), and with the same network built independently from ../shared/reference by the
direct network classes (DartsCifarNetwork, ENASMicroNetwork, AutoDeepLab, chain_from_reference). Counting
runs on the ``meta`` device; MACs at reduced input where the network allows, full sizes in
benchmarks/bench_zoo.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from nasatlas.spaces.build import input_shape
from nasatlas.spaces.cost import count_macs, count_params
from nasatlas.spaces.zoo import build_zoo, export_zoo, get_zoo_entry, list_zoo, zoo_cost, zoo_space
from nasatlas.studies.cli import main
from torch import nn

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
NAMES = list_zoo()

#: exact official-code parameter counts (params, params_with_aux) asserted by the builder tests
OFFICIAL = {
    "darts_v1_cifar": (3_169_414, 3_645_840),  # quark0/darts; test_nets_darts_nb201.py
    "darts_v2_cifar": (3_349_342, 3_825_768),  # quark0/darts; acceptance.py
    "darts_v2_imagenet": (4_718_752, None),  # quark0/darts NetworkImageNet; test_nets_darts_nb201.py
    "enas_cifar": (3_894_372, 4_389_220),  # melodyguan/enas micro_child.py layout; test_nets_tf.py
    "nasnet_a_mobile": (5_289_978, None),  # TF-slim nasnet.py mobile config; test_nets_tf.py NASNetMobileNetwork
    "amoebanet_a_mobile": (5_086_930, None),  # tensorflow/tpu amoeba_net N=4, F=50; test_nets_tf.py
    "pnasnet5_mobile": (5_064_487, None),  # TF-slim pnasnet.py mobile config; test_nets_tf.py
    "proxylessnas_mobile": (4_080_512, None),  # official proxyless_mobile.config; acceptance.py
    "proxylessnas_gpu": (7_119_848, None),  # osmr/imgclsmob; test_chain_net.py
    "proxylessnas_cpu": (4_361_648, None),  # osmr/imgclsmob; test_chain_net.py
    "mobilenet_v2": (3_504_872, None),  # torchvision; test_chain_net.py
    "mnasnet_a1": (3_887_038, None),  # osmr/imgclsmob; test_chain_net.py
    "autodeeplab_s": (10_147_427, None),  # Auto-DeepLab table 3; test_nets_autodeeplab.py
    "autodeeplab_m": (21_622_451, None),
    "autodeeplab_l": (44_424_691, None),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _meta(name: str, net: Any = None) -> nn.Module:
    with torch.device("meta"):
        return build_zoo(name, net)  # type: ignore[no-any-return]


def _counts(model: nn.Module) -> tuple[int, int | None]:
    aux = tuple(n for n, m in model.named_children() if "aux" in n.lower() and m is not None)
    p, total = count_params(model, exclude_prefixes=aux), count_params(model)
    return p, (total if aux and total > p else None)


def _reference(name: str) -> dict[str, Any]:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} is absent (needs ../shared)")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- registry and membership


def test_registry_holds_the_issue_entries() -> None:
    wanted = {"darts_v1_cifar", "darts_v2_cifar", "darts_v2_imagenet", "pc_darts_cifar", "pc_darts_imagenet",
              "pdarts_cifar", "pdarts_imagenet", "gdas_v1_cifar", "enas_cifar", "nasnet_a_mobile",
              "amoebanet_a_mobile", "pnasnet5_mobile", "proxylessnas_gpu", "proxylessnas_cpu", "proxylessnas_mobile",
              "mobilenet_v2", "mnasnet_a1", "fbnet_a", "fbnet_b", "fbnet_c", "autodeeplab_s", "autodeeplab_m",
              "autodeeplab_l", "nb201_best_cifar10"}
    assert set(NAMES) == wanted


@pytest.mark.parametrize("name,key", [("nasnet_a_mobile", "NASNet_A_official_TF"),
                                      ("amoebanet_a_mobile", "AmoebaNet_A_official_TF")])
def test_official_tf_cells_are_members_of_the_fixed_output_variant(name: str, key: str) -> None:
    """The official NASNet-A / AmoebaNet-A cells list their outputs by hand: they are members of the
    space variant with those fixed outputs (same decisions, same count), not of the derived-output
    space, and the built cell equals the TF definition (edges, inputs and used_hiddenstates)."""
    import numpy as np
    from nasatlas.spaces import get_space
    from nasatlas.spaces.build import _tf_cells
    from nasatlas.spaces.zoo import get_zoo_entry, zoo_space
    ref = _reference("genotypes.json")[key]
    e = get_zoo_entry(name)
    space = zoo_space(name)
    plain = get_space(e.space)
    assert space.cardinality() == plain.cardinality()
    with pytest.raises(ValueError, match="concat"):
        plain.from_str(e.arch)
    normal, reduce = _tf_cells(space, np.asarray(space.from_str(e.arch).indices))
    for spec, cell in ((normal, "normal"), (reduce, "reduce")):
        assert list(spec.hiddenstate_indices) == ref[cell]["tf_hiddenstate_indices"]
        assert list(spec.used_hiddenstates) == ref[cell]["tf_used_hiddenstates"]


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_a_member_of_its_space_with_the_paper_input(name: str) -> None:
    e = get_zoo_entry(name)
    space = zoo_space(name)
    row = space.from_str(e.arch)  # validates against the declaration (published edge order is kept in zoo.json;
    assert space.from_str(space.to_str(row)) == row  # unordered spaces print pairs canonically)
    want = {"CIFAR-10": (3, 32, 32), "ImageNet": (3, 224, 224)}.get(e.task, (3, 1025, 2049))
    assert e.input == want
    assert input_shape(space, e.net) == e.input  # the preset expects the paper's input
    assert e.source and e.paper["citation"]


@pytest.mark.parametrize("name", NAMES)
def test_entry_builds_with_official_counts(name: str) -> None:
    params, with_aux = _counts(_meta(name))
    if name in OFFICIAL:
        want_p, want_aux = OFFICIAL[name]
        assert params == want_p
        if want_aux is not None:
            assert with_aux == want_aux
    paper = get_zoo_entry(name).paper.get("params")
    if paper and name not in ("darts_v1_cifar", "enas_cifar"):  # documented differences (docs/zoo.md)
        assert abs(params / paper - 1) < 0.08, (params, paper)


# --------------------------------------------------------------------------- independent rebuilds


@pytest.mark.needs_shared
@pytest.mark.parametrize(("name", "key"), [
    ("darts_v1_cifar", "DARTS_V1"), ("pc_darts_cifar", "PC_DARTS_cifar"), ("pdarts_cifar", "PDARTS"),
    ("gdas_v1_cifar", "GDAS_V1"), ("pc_darts_imagenet", "PC_DARTS_image"), ("pdarts_imagenet", "PDARTS"),
])
def test_darts_family_equals_the_direct_network(name: str, key: str) -> None:
    from nasatlas.spaces.nets.darts_net import DartsCifarNetwork, DartsImageNetNetwork, genotype_from_dict
    g = genotype_from_dict(_reference("genotypes.json")[key])
    with torch.device("meta"):
        if "imagenet" in name:
            ref = DartsImageNetNetwork(g, C=48, num_classes=1000, layers=14, auxiliary=True)
        else:
            ref = DartsCifarNetwork(g, C=36, num_classes=10, layers=20, auxiliary=True)
    assert _counts(_meta(name)) == _counts(ref)


@pytest.mark.needs_shared
@pytest.mark.parametrize(("name", "key"), [
    ("proxylessnas_gpu", "gpu"), ("proxylessnas_cpu", "cpu"), ("proxylessnas_mobile", "mobile"),
    ("mobilenet_v2", "MobileNetV2_1.0"), ("mnasnet_a1", "MnasNet_A1_1.0"),
    ("fbnet_a", "FBNet_A"), ("fbnet_b", "FBNet_B"), ("fbnet_c", "FBNet_C"),
])
def test_chains_equal_the_reference_entries(name: str, key: str) -> None:
    """Same layers as the network built from the JSON alone (test_chain_net.py's reference path);
    MACs compared at 112x112, where the stride pattern still divides evenly."""
    from nasatlas.spaces.nets.chain_net import chain_from_reference
    refs = {**_reference("genotypes.json")["ProxylessNAS_final"], **_reference("chains.json")}
    with torch.device("meta"):
        ref = chain_from_reference(refs[key])
    ours = _meta(name)
    assert count_params(ours) == count_params(ref)
    assert count_macs(ours, (1, 3, 112, 112)) == count_macs(ref, (1, 3, 112, 112))


def test_enas_and_autodeeplab_equal_the_direct_networks() -> None:
    from nasatlas.spaces.nets.autodeeplab_net import AutoDeepLab
    from nasatlas.spaces.nets.tf_cell_net import ENASMicroNetwork
    with torch.device("meta"):
        enas = ENASMicroNetwork(auxiliary=True)
        adl = AutoDeepLab()
    assert _counts(_meta("enas_cifar")) == _counts(enas)
    ours = _meta("autodeeplab_s")
    # 65x129 = 1025x2049 / 16 with the same odd-size arithmetic; value asserted in test_nets_autodeeplab.py
    assert count_macs(ours, (1, 3, 65, 129)) == count_macs(adl, (1, 3, 65, 129)) == 1_431_676_472


def test_pnasnet5_mobile_is_the_official_network() -> None:
    """The pnas space's derived output (concat rule "all") gives the official PNASNet-5 cell, and the zoo entry
    builds PNASNetMobileNetwork (MACs asserted in test_nets_tf.py)."""
    from nasatlas.spaces.build import _tf_cells, arch_row
    from nasatlas.spaces.nets.tf_cell_net import PNASNET_5_CELL, PNASNetMobileNetwork
    space = zoo_space("pnasnet5_mobile")
    cell, reduce = _tf_cells(space, arch_row(space, get_zoo_entry("pnasnet5_mobile").arch))
    assert cell == PNASNET_5_CELL and reduce is None
    with torch.device("meta"):
        ref = PNASNetMobileNetwork()
    assert _counts(_meta("pnasnet5_mobile")) == _counts(ref) == (5_064_487, None)


def test_cost_at_the_paper_input() -> None:
    """Full-size MACs where they are cheap: CIFAR nets and ProxylessNAS-Mobile (acceptance.py's figure)."""
    darts = zoo_cost("darts_v2_cifar")
    assert (darts["params"], darts["params_with_aux"], darts["macs"]) == (3_349_342, 3_825_768, 528_359_040)
    mobile = zoo_cost("proxylessnas_mobile")
    assert (mobile["params"], mobile["params_with_aux"], mobile["macs"]) == (4_080_512, None, 320_427_584)
    assert mobile["input"] == [3, 224, 224]


@pytest.mark.needs_shared
def test_nb201_best_is_the_best_validation_cell_and_costs_what_nb201_recorded() -> None:
    pd = pytest.importorskip("pandas")
    data = REFERENCE.parent / "data"
    if not (data / "nb201_cifar10valid_avg3seeds.parquet").exists():
        pytest.skip("needs ../shared/data")
    table = pd.read_parquet(data / "nb201_cifar10valid_avg3seeds.parquet", columns=["arch", "valid_acc"])
    arch = get_zoo_entry("nb201_best_cifar10").arch
    assert table.loc[table["valid_acc"].idxmax(), "arch"] == arch
    cost = pd.read_parquet(data / "nb201_cost_cifar10_subset.parquet")
    row = cost[cost["arch"] == arch]
    if len(row):  # NB201's own parameter count, in millions
        assert zoo_cost("nb201_best_cifar10", macs=False)["params"] / 1e6 == pytest.approx(
            float(row["params_millions"].iloc[0]), abs=5e-7)


# --------------------------------------------------------------------------- export


_LOADER = r"""
import json, sys
try:
    import nasatlas  # noqa: F401
    print("NASATLAS_IMPORTABLE"); sys.exit(3)
except ImportError:
    pass
import torch
torch.set_num_threads(1)
out = {}
for name, path, inp in json.loads(sys.argv[1]):
    m = torch.jit.load(path)
    x = torch.load(inp)
    with torch.no_grad():
        out[name] = m(x).tolist()
print(json.dumps(out))
"""


def test_export_reloads_without_nasatlas(tmp_path: Path) -> None:
    """TorchScript files load and run in one fresh interpreter where nasatlas is not importable
    (``-I -S``: no site processing, so the editable install's path hook is absent; torch's directory only)."""
    jobs = []
    expected = {}
    for name in ("darts_v2_cifar", "proxylessnas_mobile", "nb201_best_cifar10"):
        path = export_zoo(name, tmp_path / f"{name}.pt", seed=0)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = build_zoo(name).eval()
        x = torch.randn(2, *get_zoo_entry(name).input, generator=torch.Generator().manual_seed(1))
        inp = tmp_path / f"{name}.x.pt"
        torch.save(x, inp)
        with torch.no_grad():
            expected[name] = model(x)
        jobs.append((name, str(path), str(inp)))
    # a directory that mirrors torch's site-packages minus nasatlas (a non-editable install puts it
    # beside torch; an editable one adds a path hook, which -S already skips)
    site = Path(torch.__file__).resolve().parents[1]
    mirror = tmp_path / "site"
    mirror.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(("nasatlas", "__editable__")) and entry.suffix != ".pth":
            (mirror / entry.name).symlink_to(entry)
    code = f"import sys; sys.path.append({str(mirror)!r})\n" + _LOADER
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code, json.dumps(jobs)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for name, want in expected.items():
        torch.testing.assert_close(torch.tensor(got[name]), want, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- CLI and errors


def test_cli_zoo_cost_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "cost", "nb201_best_cifar10", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"name", "space", "params", "params_with_aux", "macs", "input", "paper", "source", "notes"} <= set(d)
    assert d["name"] == "nb201_best_cifar10" and d["space"] == "nb201" and d["input"] == [3, 32, 32]
    assert d["params_with_aux"] is None and d["macs"] > 0
    assert main(["list", "zoo", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == NAMES
    assert main(["zoo", "show", "mnasnet_a1"]) == 0
    assert json.loads(capsys.readouterr().out)["space_params"] == {"blocks": 7}


def test_unknown_name_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown zoo entry 'darts_v3'.*darts_v2_cifar.*nb201_best_cifar10"):
        get_zoo_entry("darts_v3")
    assert main(["zoo", "cost", "darts_v3", "--json"]) == 2
    assert "known entries: darts_v1_cifar" in capsys.readouterr().err
    with pytest.raises(ValueError, match="three positive integers"):
        export_zoo("nb201_best_cifar10", "unused.pt", input_shape=(3, 32))
