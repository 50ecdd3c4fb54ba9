"""Declarative search spaces: a space is a short declaration; counts, sampling, strings,
encodings, neighbours and distances are derived from it (see DESIGN §3)."""

from .cell import CellDAG
from .decisions import Arch, Decision
from .primitives import Categorical, Chain, ChainLayer, EdgeDAG, Primitive
from .registry import get_space, list_spaces, register_space, unregister_space
from .space import Space
from .trellis import TrellisPath

__all__ = ["Arch", "Decision", "Primitive", "Categorical", "EdgeDAG", "CellDAG", "Chain", "ChainLayer",
           "TrellisPath", "Space", "get_space", "list_spaces", "register_space", "unregister_space"]
