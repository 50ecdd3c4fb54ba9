"""Bad input gets clear errors naming the field and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from nasatlas.spaces import CellDAG, get_space
from nasatlas.spaces.declaration import space_from_dict


def test_malformed_strings() -> None:
    nb = get_space("nb201")
    with pytest.raises(ValueError, match="node groups"):
        nb.from_str("|nor_conv_3x3~0|+|none~0|none~1|")
    with pytest.raises(ValueError, match="must read 'op~1'"):
        nb.from_str("|nor_conv_3x3~0|+|none~0|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="malformed architecture string"):
        get_space("darts").from_str("Genotype(normal=[('sep_conv_3x3', 0)")
    with pytest.raises(ValueError, match="only literals"):
        get_space("darts").from_str("Genotype(normal=__import__('os'))")


def test_unknown_op_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'conv_9x9'.*allowed: \['none', 'skip_connect'"):
        get_space("nb201").from_str("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_out_of_range_decision_names_the_decision() -> None:
    s = get_space("nb201")
    with pytest.raises(ValueError, match=r"decision 'cell/edge2<-1': index 7 is out of range; allowed 0 .. 4"):
        s.arch([0, 0, 7, 0, 0, 0])
    with pytest.raises(ValueError, match="expected 6 decision indices"):
        s.arch([0, 0])
    with pytest.raises(ValueError, match="out of range"):
        s.unrank([15_625])


def test_darts_node_inputs_must_be_distinct() -> None:
    s = get_space("darts")
    text = s.to_str(s.sample(np.random.default_rng(0), 1)[0])
    bad = text.replace("normal=[(", "normal=[('sep_conv_3x3', 1), (", 1)
    with pytest.raises(ValueError):
        s.from_str(bad)
    same = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)])")
    with pytest.raises(ValueError, match="distinct inputs"):
        s.from_str(same)
    good = same.replace("('sep_conv_3x3', 1), ('sep_conv_3x3', 1)", "('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", 1)
    s.from_str(good)
    with pytest.raises(ValueError, match="does not follow this space's rule"):
        s.from_str(good.replace("reduce=", "normal_concat=[2, 3], reduce="))


def test_impossible_declaration() -> None:
    with pytest.raises(ValueError, match="impossible declaration.*k=3 distinct inputs"):
        CellDAG("normal", nodes=2, ops=["a"], k=3, n_inputs=2)
    with pytest.raises(ValueError, match="allowed: 'paper'"):
        get_space("autodeeplab", paths="both")


def test_unknown_space_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown space 'dartz'; known spaces: .*darts.*nb201"):
        get_space("dartz")
    with pytest.raises(ValueError, match="bad parameters"):
        get_space("darts", width=3)


def test_trellis_rejects_jumps() -> None:
    s = get_space("autodeeplab")
    text = s.to_str(s.sample(np.random.default_rng(0), 1)[0])
    start = text.index("path=[")
    end = text.index("]", start) + 1
    bad = text[:start] + "path=[4, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16]" + text[end:]
    with pytest.raises(ValueError, match="jumps from /4 to /16"):
        s.from_str(bad)


def test_declaration_errors() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        space_from_dict({"name": "x", "blocks": [{"kind": "edge_dag", "name": "c", "nodes": 3, "ops": ["a"]}],
                         "colour": "red"})
    with pytest.raises(ValueError, match="allowed kinds"):
        space_from_dict({"name": "x", "blocks": [{"kind": "tree", "name": "c"}]})
    with pytest.raises(ValueError, match=r"blocks\[0\] \(edge_dag\): unknown key"):
        space_from_dict({"name": "x", "blocks": [{"kind": "edge_dag", "name": "c", "nodes": 3, "ops": ["a"],
                                                  "edges": 3}]})
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        get_space("nb201").sample(0, 3)  # type: ignore[arg-type]
