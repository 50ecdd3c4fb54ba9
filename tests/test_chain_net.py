"""Tests of the MobileNet-family ops and chain networks (spaces/ops_mobile.py, spaces/nets/chain_net.py).

Published counts come from the papers' reference code; each figure names its source. MACs are conv + linear
multiply-accumulates at batch 1, 3x224x224, eval mode (``nasatlas.spaces.cost``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nasatlas.spaces.cost import count_macs, count_macs_hooks, count_params
from nasatlas.spaces.nets.chain_net import (
    MNASNET_BASE,
    MNASNET_FILTER_FACTORS,
    MNASNET_LAYER_OFFSETS,
    PROXYLESSNAS_STAGES,
    BlockSpec,
    ChainNetwork,
    ConvSpec,
    MnasBlockChoice,
    chain_from_reference,
    fbnet_block_choices,
    fbnet_chain,
    mnasnet_chain,
    proxylessnas_block_choices,
    proxylessnas_chain,
)
from nasatlas.spaces.ops_mobile import (
    FBNET_OPS,
    MNASNET_CONV_OPS,
    MNASNET_OPS,
    MNASNET_SKIP_OPS,
    MOBILE_OPS,
    PROXYLESSNAS_OPS,
    MBConv,
    PoolResidual,
    SkipLayer,
    SqueezeExcite,
    make_divisible,
    make_mobile_op,
)
from torch import nn

SHAPE = (1, 3, 224, 224)
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"

# proxyless_mobile.config (han-cai/files, genotypes.json ProxylessNAS_final.mobile): the 21 searchable blocks.
PROXYLESS_MOBILE = [
    "MB3_5x5", "MB3_3x3", "zero", "zero",
    "MB3_7x7", "MB3_3x3", "MB3_5x5", "MB3_5x5",
    "MB6_7x7", "MB3_5x5", "MB3_5x5", "MB3_5x5",
    "MB6_5x5", "MB3_5x5", "MB3_5x5", "MB3_5x5",
    "MB6_7x7", "MB6_7x7", "MB3_7x7", "MB3_7x7",
    "MB6_7x7",
]
MOBILE_STAGES = (replace(PROXYLESSNAS_STAGES[0], width=32), *PROXYLESSNAS_STAGES[1:])

# name -> (params, source, macs or None, MAC tolerance, source). Exact integers are exact in their source.
PUBLISHED: dict[str, tuple[int, str, float | None, float, str]] = {
    "mobile": (4_080_512, "ProxylessNAS official config", 320_427_584, 0, "exact; acceptance.py 320.43M"),
    "gpu": (7_119_848, "osmr/imgclsmob proxylessnas_gpu test", None, 0, ""),
    "cpu": (4_361_648, "osmr/imgclsmob proxylessnas_cpu test", None, 0, ""),
    "mobile_14": (6_857_568, "osmr/imgclsmob proxylessnas_mobile14 test", None, 0, ""),
    "MobileNetV2_1.0": (3_504_872, "torchvision num_params", 0.301e9, 0.5e6, "torchvision _ops 0.301"),
    "MnasNet_A1_1.0": (3_887_038, "osmr/imgclsmob mnasnet_a1 test", 312e6, 0.5e6, "MnasNet table 1: 312M"),
    "MnasNet_B1_1.0": (4_383_312, "torchvision mnasnet1_0 num_params", 0.314e9, 0.5e6,
                       "torchvision _ops 0.314"),
    "MobileNetV3_Large_1.0": (5_483_032, "torchvision num_params", 0.217e9, 0.5e6, "torchvision _ops 0.217"),
    "MobileNetV3_Small_1.0": (2_542_856, "torchvision num_params", 0.057e9, 0.5e6, "torchvision _ops 0.057"),
}


# --------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _load(name: str) -> dict[str, Any]:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} is absent (needs ../shared)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def entries() -> dict[str, dict[str, Any]]:
    """Every chains.json entry and every ProxylessNAS_final genotype, by name."""
    chains = {k: v for k, v in _load("chains.json").items() if k not in ("about", "convention")}
    return {**_load("genotypes.json")["ProxylessNAS_final"], **chains}


@pytest.fixture(scope="module")
def reference_counts(entries: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(params, MACs at 224) of each entry built from its JSON alone."""
    out = {}
    for name, entry in entries.items():
        net = chain_from_reference(entry)
        out[name] = (count_params(net), count_macs(net, SHAPE))
    return out


def _analytic_counts(entry: dict[str, Any]) -> tuple[int, int]:
    """(params, MACs) straight from a JSON entry's fields and the convention text of chains.json.

    Independent of the builders: conv params = out * in/groups * k^2 (+ out bias) + 2 * out (BN);
    MACs = out_h * out_w * out * in/groups * k^2; SE = two biased 1x1 convs on the pooled map;
    ProxylessNAS genotypes: relu6, no bias, mid = round(in * e), MB1 without expansion, zero = nothing.
    """
    params = macs = 0
    size = 224

    def conv(c_in: int, c_out: int, k: int, s: int, groups: int = 1, bias: bool = False,
             bn: bool = True) -> None:
        nonlocal params, macs, size
        size = (size + 2 * (k // 2) - k) // s + 1
        params += c_out * (c_in // groups) * k * k + (c_out if bias else 0) + (2 * c_out if bn else 0)
        macs += size * size * c_out * (c_in // groups) * k * k

    if "stem" in entry:
        stem, mix, head = entry["stem"], entry["feature_mix"], entry["head"]
        conv(3, stem["out"], stem["kernel"], stem["stride"], bias=stem["bias"])
        for b in entry["blocks"]:
            if b["type"] == "skip":
                assert b["in"] == b["out"] and b["stride"] == 1
                continue
            bias = b.get("bias", False)
            if b["expand_conv"]:
                conv(b["in"], b["mid"], 1, 1, b.get("pw_groups", 1), bias)
            conv(b["mid"], b["mid"], b["kernel"], b["stride"], b["mid"], bias)
            if b["se"]:
                r, m = b["se"]["reduced"], b["mid"]
                params += 2 * m * r + m + r
                macs += 2 * m * r
            conv(b["mid"], b["out"], 1, 1, b.get("pwl_groups", 1), bias)
        conv(mix["in"], mix["out"], mix.get("kernel", 1), 1, bias=mix["bias"])
        width = mix["out"]
        if head["fc_hidden"]:
            params += width * head["fc_hidden"]["out"] + head["fc_hidden"]["out"]
            macs += width * head["fc_hidden"]["out"]
            width = head["fc_hidden"]["out"]
    else:
        conv(3, entry["first_conv_out"], 3, 2)
        for b in entry["blocks"]:
            if b["op"] == "zero":
                continue
            m = re.fullmatch(r"MB(\d)_(\d)x\d", b["op"])
            assert m is not None
            e, k = int(m[1]), int(m[2])
            mid = round(b["in"] * e)
            if e != 1:
                conv(b["in"], mid, 1, 1)
            conv(mid, mid, k, b["stride"], mid)
            conv(mid, b["out"], 1, 1)
        mix_in, mix_out = entry["feature_mix_in_out"]
        conv(mix_in, mix_out, 1, 1)
        width = entry["feature_mix_in_out"][1]
    params += width * 1000 + 1000
    macs += width * 1000
    return params, macs


def _fbnet_choices(entry: dict[str, Any]) -> list[str]:
    """chains.json FBNet ops (``MB6_5x5``, ``MB1_3x3_g2``, ``skip``) as FBNet table-2 names (``k5_e6``)."""
    out = []
    for b in entry["blocks"]:
        m = re.fullmatch(r"MB(\d)_(\d)x\d(_g2)?", b["op"])
        out.append("skip" if b["op"] == "skip" else f"k{m[2]}_e{m[1]}{m[3] or ''}")  # type: ignore[index]
    return out


def _layers(net: ChainNetwork) -> list[BlockSpec]:
    """The resolved block specs of ``net`` without identity positions (skipped layers compute nothing)."""
    specs = [s.resolved() for s in net.block_specs]
    return [s for s in specs if s != BlockSpec("skip", s.C_in, s.C_in)]


def _template_builds(entries: dict[str, dict[str, Any]]) -> dict[str, ChainNetwork]:
    g = {k: [b["op"] for b in entries[k]["blocks"][1:]] for k in ("gpu", "cpu", "mobile")}
    mbv2 = (["MB6_3x3"] * 2 + ["zero"] * 2 + ["MB6_3x3"] * 3 + ["zero"] + ["MB6_3x3"] * 4
            + ["MB6_3x3"] * 3 + ["zero"] + ["MB6_3x3"] * 3 + ["zero"] + ["MB6_3x3"])
    mbv2_stages = tuple(replace(s, width=w) for s, w in zip(PROXYLESSNAS_STAGES, (24, 32, 64, 96, 160, 320)))
    a1 = ["dconv_k3_se0_none_f1_n+0", "mbconv6_k3_se0_identity_f1_n+0",
          "mbconv3_k5_se0.25_identity_f1.25_n+0", "mbconv6_k3_se0_identity_f1.25_n+0",
          "mbconv6_k3_se0.25_identity_f1_n-1",
          "mbconv6_k5_se0.25_identity_f1_n+0", "mbconv6_k3_se0_identity_f1_n+0"]
    b1 = ["dconv_k3_se0_none_f1_n+0", "mbconv3_k3_se0_identity_f1_n+1",
          "mbconv3_k5_se0_identity_f1.25_n+0", "mbconv6_k5_se0_identity_f1.25_n-1",
          "mbconv6_k3_se0_identity_f1_n-1", "mbconv6_k5_se0_identity_f1_n+1",
          "mbconv6_k3_se0_identity_f1_n+0"]
    base_a1 = tuple(replace(b, filters=112) if i == 4 else b for i, b in enumerate(MNASNET_BASE))
    base_b1 = tuple(replace(b, filters=192) if i == 5 else b for i, b in enumerate(MNASNET_BASE))
    return {
        "gpu": proxylessnas_chain(g["gpu"], 1.35),
        "cpu": proxylessnas_chain(g["cpu"], 1.12),
        "mobile": proxylessnas_chain(g["mobile"], stages=MOBILE_STAGES),
        "MobileNetV2_1.0": proxylessnas_chain(mbv2, stages=mbv2_stages),
        "FBNet_A": fbnet_chain(_fbnet_choices(entries["FBNet_A"]), last_channels=1504),
        "FBNet_B": fbnet_chain(_fbnet_choices(entries["FBNet_B"])),
        "FBNet_C": fbnet_chain(_fbnet_choices(entries["FBNet_C"])),
        "MnasNet_A1_1.0": mnasnet_chain(a1, base=base_a1),
        "MnasNet_B1_1.0": mnasnet_chain(b1, base=base_b1),
    }


# --------------------------------------------------------------------------- exact published counts


def test_proxylessnas_mobile_exact_counts() -> None:
    net = proxylessnas_chain(PROXYLESS_MOBILE, stages=MOBILE_STAGES)
    assert count_params(net) == 4_080_512
    assert count_macs(net, SHAPE) == 320_427_584
    assert count_macs_hooks(net, SHAPE) == 320_427_584


@pytest.mark.needs_shared
def test_every_reference_entry_matches_its_analytic_count(
    entries: dict[str, Any], reference_counts: dict[str, tuple[int, int]]
) -> None:
    assert len(entries) == 12
    for name, entry in entries.items():
        assert reference_counts[name] == _analytic_counts(entry), name


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reference_entry_matches_published_counts(
    name: str, reference_counts: dict[str, tuple[int, int]]
) -> None:
    params, source, macs, tol, macs_source = PUBLISHED[name]
    got_params, got_macs = reference_counts[name]
    assert got_params == params, f"{name}: {got_params} params, {source} says {params}"
    if macs is not None:
        assert abs(got_macs - macs) <= tol, f"{name}: {got_macs} MACs, {macs_source}"


@pytest.mark.needs_shared
def test_fbnet_c_matches_timm_layout_exactly(entries: dict[str, Any]) -> None:
    # timm / osmr-imgclsmob fbnet_cb: 5,572,200 params, no conv bias, and its `ir` block keeps a 1x1
    # expansion conv + BN at e=1 (layers 16->16 and twice 24->24), which mobile-vision drops.
    net = fbnet_chain(_fbnet_choices(entries["FBNet_C"]), bias=False)
    e1_expansions = (16 * 16 + 2 * 16) + 2 * (24 * 24 + 2 * 24)
    assert count_params(net) + e1_expansions == 5_572_200


@pytest.mark.needs_shared
def test_templates_rebuild_reference_entries(entries: dict[str, Any],
                                             reference_counts: dict[str, tuple[int, int]]) -> None:
    for name, net in _template_builds(entries).items():
        ref = chain_from_reference(entries[name])
        assert _layers(net) == _layers(ref), name
        assert (count_params(net), count_macs(net, SHAPE)) == reference_counts[name], name


def test_mnasnet_paper_grid_misses_published_widths() -> None:
    # MnasNet section 4.1: filters in {0.75, 1.0, 1.25} x MobileNetV2's. A1's block 5 (112 of base 96) and
    # B1's block 6 (192 of base 160) are outside that grid, so the tests above pass base= with those widths.
    reachable = {b: {round(MNASNET_BASE[b].filters * f) for f in MNASNET_FILTER_FACTORS} for b in (4, 5)}
    assert 112 not in reachable[4] and 192 not in reachable[5]
    assert {MNASNET_BASE[b].layers + o for b in (4, 5) for o in MNASNET_LAYER_OFFSETS} >= {2, 3, 4}


# --------------------------------------------------------------------------- tiny networks train


def _forward_backward(net: nn.Module, size: int = 32) -> None:
    x = torch.randn(2, 3, size, size)
    out = net(x)
    assert out.shape == (2, 10)
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_tiny_chains_forward_and_backward() -> None:
    rng = np.random.default_rng(0)
    proxy = [str(rng.choice(opts)) for opts in proxylessnas_block_choices()]
    fb = [str(rng.choice(opts)) for opts in fbnet_block_choices()]
    mnas = ["conv_k3_se0.25_pool_f0.75_n+1", "mbconv3_k5_se0_pool_f1_n+1",
            "dconv_k5_se0.25_identity_f0.75_n+0", "mbconv6_k3_se0.25_none_f0.75_n-1",
            "conv_k5_se0_identity_f0.75_n-1",
            "mbconv3_k3_se0.25_pool_f0.75_n-1", "dconv_k3_se0_none_f0.75_n-1"]
    tiny_base = tuple(replace(b, filters=b.filters // 4) for b in MNASNET_BASE)
    torch.manual_seed(0)
    for net in (proxylessnas_chain(proxy, 0.25, 10), fbnet_chain(fb, 10, width_mult=0.25),
                mnasnet_chain(mnas, num_classes=10, base=tiny_base, first_conv=8, last_channels=32)):
        _forward_backward(net)
    pools = [s for s in mnasnet_chain(mnas, num_classes=10, base=tiny_base).block_specs if s.pool_skip]
    assert pools and all(s.C_in == s.C_out for s in pools)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=21, max_size=21))
def test_random_proxylessnas_choices_build(picks: list[int]) -> None:
    choices = [opts[i % len(opts)] for opts, i in zip(proxylessnas_block_choices(), picks)]
    net = proxylessnas_chain(choices, width_mult=0.25, num_classes=10).eval()
    skipped = [m for m in net.blocks if isinstance(m, SkipLayer)]
    assert len(skipped) == choices.count("zero") and all(m.is_identity for m in skipped)
    assert sum(count_params(m) for m in skipped) == 0
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


@given(st.sampled_from(MNASNET_CONV_OPS), st.sampled_from((3, 5)), st.sampled_from((0.0, 0.25)),
       st.sampled_from(MNASNET_SKIP_OPS), st.sampled_from(MNASNET_FILTER_FACTORS),
       st.sampled_from(MNASNET_LAYER_OFFSETS))
def test_mnas_block_choice_string_round_trips(op: str, k: int, se: float, skip: str, f: float,
                                              n: int) -> None:
    choice = MnasBlockChoice(op, k, se, skip, f, n)
    assert MnasBlockChoice.from_str(choice.to_str()) == choice
    assert choice.layer_op in MOBILE_OPS


# --------------------------------------------------------------------------- the op table and blocks


def test_mobile_ops_table_builds_every_op() -> None:
    assert len(MOBILE_OPS) == len(PROXYLESSNAS_OPS) + len(FBNET_OPS) + len(MNASNET_OPS) == 32
    x = torch.randn(1, 16, 8, 8)
    for name, factory in MOBILE_OPS.items():
        with torch.no_grad():
            assert factory(16, 16, 1)(x).shape == (1, 16, 8, 8), name
            if name != "zero":
                assert factory(16, 24, 2)(x).shape == (1, 24, 4, 4), name
    assert count_params(MOBILE_OPS["zero"](16, 16, 1)) == 0
    assert count_params(MOBILE_OPS["skip"](16, 16, 1)) == 0
    assert count_params(MOBILE_OPS["skip"](16, 24, 2)) > 0  # FBNet reference: 1x1 conv-BN-ReLU projection
    se = [m for m in MOBILE_OPS["mbconv6_k5_se0.25"](16, 16, 1).modules() if isinstance(m, SqueezeExcite)]
    assert len(se) == 1 and se[0].conv_reduce.out_channels == 4  # 0.25 x block input (TF MnasNet)


def test_mbconv_follows_the_chains_json_layout() -> None:
    block = MBConv(16, 16, 5, 1, 6)
    assert block.mid == 96 and block.shortcut
    assert isinstance(block.project[-1], nn.BatchNorm2d)  # linear bottleneck: no activation after projection
    assert not MBConv(16, 16, 3, 2, 6).shortcut and not MBConv(16, 24, 3, 1, 6).shortcut
    assert not MBConv(16, 16, 3, 1, 6, shortcut=False).shortcut
    ds = make_mobile_op("k3_e1", 16, 16, 1)
    assert isinstance(ds, MBConv) and ds.expand is None and ds.mid == 16
    g2 = make_mobile_op("k5_e1_g2", 16, 16, 1)
    assert isinstance(g2, MBConv) and g2.project[0].groups == 2 and g2.shuffle is not None
    assert count_params(SqueezeExcite(96, 4)) == 2 * 96 * 4 + 96 + 4
    body = nn.Identity()
    pool = PoolResidual(body, 8, 1)
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(pool(x), x + nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False))


def test_make_divisible_matches_the_reference_widths() -> None:
    # ProxylessNAS-CPU = width_mult 1.12 (stem 40, first 24, stage 1 32 through the 10 % rule); GPU = 1.35.
    assert [make_divisible(v * 1.12) for v in (32, 16, 24, 40, 80, 96, 192, 320, 1280)] == [
        40, 24, 32, 48, 88, 104, 216, 360, 1432]
    assert [make_divisible(v * 1.35) for v in (32, 16, 24, 40, 80, 96, 192, 320, 1280)] == [
        40, 24, 32, 56, 112, 128, 256, 432, 1728]


def test_proxylessnas_positions_follow_the_supernet() -> None:
    choices = proxylessnas_block_choices()
    assert len(choices) == 21
    assert [i for i, c in enumerate(choices) if "zero" not in c] == [0, 4, 8, 12, 16, 20]
    assert len(fbnet_block_choices()) == 22 and all(c == FBNET_OPS for c in fbnet_block_choices())


# --------------------------------------------------------------------------- clear errors


def test_unknown_op_names_list_the_known_ones() -> None:
    bad = list(PROXYLESS_MOBILE)
    bad[5] = "MB9_3x3"
    with pytest.raises(ValueError, match=r"choices\[5\].*unknown op name 'MB9_3x3'.*'MB3_3x3'"):
        proxylessnas_chain(bad)
    with pytest.raises(ValueError, match=r"unknown op name 'k7_e6'.*'k3_e1_g2'"):
        fbnet_chain(["k7_e6"] * 22)
    with pytest.raises(ValueError, match=r"unknown mobile op name 'sep_conv_3x3'.*'zero'.*'k5_e6'.*'dconv"):
        make_mobile_op("sep_conv_3x3", 16, 16, 1)
    with pytest.raises(ValueError, match="unknown mobile op name 'k5_e6_g2'"):
        make_mobile_op("k5_e6_g2", 16, 16, 1)  # FBNet has no grouped e6 block (table 2)
    with pytest.raises(ValueError, match="conv_op must be one of"):
        MnasBlockChoice("sepconv", 3, 0.0, "none", 1.0, 0)
    with pytest.raises(ValueError, match="cannot parse MnasNet block choice"):
        mnasnet_chain(["mbconv6"] * 7)


def test_zero_is_refused_where_the_shape_changes() -> None:
    bad = list(PROXYLESS_MOBILE)
    bad[4] = "zero"  # first block of stage 2
    with pytest.raises(ValueError, match=r"choices\[4\].*'zero' is not allowed at this position"):
        proxylessnas_chain(bad)
    with pytest.raises(ValueError, match="'zero' skips a block and needs stride 1"):
        make_mobile_op("zero", 16, 16, 2)


def test_wrong_number_of_choices() -> None:
    with pytest.raises(ValueError, match="exactly 21 choices.*got 20"):
        proxylessnas_chain(PROXYLESS_MOBILE[:-1])
    with pytest.raises(ValueError, match="exactly 22 choices.*got 21"):
        fbnet_chain(["k3_e3"] * 21)
    with pytest.raises(ValueError, match="exactly 7 choices.*got 6"):
        mnasnet_chain(["mbconv6_k3_se0_identity_f1_n+0"] * 6)
    with pytest.raises(ValueError, match="num_blocks=6 but the base network has 7 blocks"):
        mnasnet_chain(["mbconv6_k3_se0_identity_f1_n+0"] * 6, num_blocks=6)
    with pytest.raises(ValueError, match="list of 21 choices"):
        proxylessnas_chain("MB3_3x3")  # type: ignore[arg-type]


def test_bad_strides_and_shapes() -> None:
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 3"):
        MBConv(16, 16, 3, 3, 6)
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 4"):
        make_mobile_op("MB3_3x3", 16, 16, 4)
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 0"):
        BlockSpec("ir", 16, 16, 0)
    with pytest.raises(ValueError, match="shortcut=True needs stride 1"):
        MBConv(16, 16, 3, 2, 6, shortcut=True)
    with pytest.raises(ValueError, match="kernel must be odd"):
        MBConv(16, 16, 4, 1, 6)
    with pytest.raises(ValueError, match=r"blocks\[1\]\.C_in=16 but the layer before it outputs 24"):
        ChainNetwork([BlockSpec("ds", 32, 24), BlockSpec("ir", 16, 16, expand_ratio=6)],
                     ConvSpec(3, 32, 3, 2), ConvSpec(16, 64))
    with pytest.raises(ValueError, match="no field 'stem'|neither 'stem'"):
        chain_from_reference({"blocks": []})
