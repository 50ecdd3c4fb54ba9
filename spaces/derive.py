"""Derivation rules: from architecture probabilities to one architecture of the space.

Each rule is a named, tested function of numpy arrays:

* :func:`argmax_per_row`: one option per site (NB201 edges, chain layers; GDAS, ProxylessNAS), with
  options that must not be picked excluded;
* :func:`darts_top_k_edges`: DARTS (Liu et al. 2019, Sec. 2.4): per intermediate node keep the ``k``
  strongest incoming edges, an edge's strength being its largest non-zero op weight, and on each
  kept edge the strongest non-zero op;
* :func:`viterbi_path`: Auto-DeepLab (Liu et al. 2019, Sec. 3.3): the network path of largest
  product of transition probabilities, by dynamic programming over the trellis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["argmax_per_row", "darts_top_k_edges", "viterbi_path", "edge_index"]


def argmax_per_row(probs: np.ndarray, sizes: Sequence[int] | None = None,
                   exclude: Sequence[int] = ()) -> np.ndarray:
    """Index of the largest entry of each row among its first ``sizes[r]`` options, skipping ``exclude``.

    Ties go to the lowest index (``numpy.argmax``).
    """
    p = np.array(probs, dtype=np.float64, copy=True)
    if p.ndim != 2:
        raise ValueError(f"probs must be a (rows, options) array, got shape {p.shape}")
    if sizes is not None:
        for r, s in enumerate(sizes):
            p[r, s:] = -np.inf
    for e in exclude:
        p[:, e] = -np.inf
    if np.isneginf(p).all(axis=1).any():
        raise ValueError("a row has no option left to pick after exclusions")
    return np.asarray(p.argmax(axis=1), dtype=np.int64)


def edge_index(nodes: int, n_inputs: int = 2) -> list[list[int]]:
    """Row of each (node, input) edge in the DARTS edge order: node ``b`` (id ``n_inputs + b``) has
    edges from inputs ``0 .. n_inputs + b - 1``, listed node after node."""
    out, k = [], 0
    for b in range(nodes):
        out.append(list(range(k, k + n_inputs + b)))
        k += n_inputs + b
    return out


def darts_top_k_edges(probs: np.ndarray, nodes: int, n_inputs: int = 2, k: int = 2,
                      zero_index: int | None = 0) -> list[list[tuple[int, int]]]:
    """The DARTS discretisation of one cell (Liu et al. 2019, Sec. 2.4).

    Args:
        probs: ``(edges, ops)`` op probabilities in :func:`edge_index` order.
        nodes, n_inputs: intermediate nodes and cell inputs.
        k: edges kept per node (2 in DARTS).
        zero_index: the ``none`` op's column, never counted or picked (None if there is none).

    Returns:
        per node, ``k`` pairs ``(input id, op column)`` ordered by input id. An edge's strength is its
        largest non-zero op probability; ties go to the lower input id, as a stable sort would.
    """
    p = np.asarray(probs, dtype=np.float64)
    idx = edge_index(nodes, n_inputs)
    if p.shape[0] != idx[-1][-1] + 1:
        raise ValueError(f"probs has {p.shape[0]} edge rows; a cell of {nodes} nodes with {n_inputs} inputs has "
                         f"{idx[-1][-1] + 1}")
    q = p.copy()
    if zero_index is not None:
        q[:, zero_index] = -np.inf
    out: list[list[tuple[int, int]]] = []
    for b in range(nodes):
        rows = idx[b]
        if k > len(rows):
            raise ValueError(f"node {n_inputs + b} has {len(rows)} incoming edges; cannot keep k={k}")
        strength = q[rows].max(axis=1)
        order = sorted(range(len(rows)), key=lambda j: (-strength[j], j))[:k]
        out.append([(j, int(q[rows[j]].argmax())) for j in sorted(order)])
    return out


def viterbi_path(transitions: np.ndarray, first_levels: Sequence[int] = (0,),
                 start: np.ndarray | None = None) -> list[int]:
    """The most probable level sequence through a trellis (Viterbi, 1967; Auto-DeepLab Sec. 3.3).

    Args:
        transitions: ``(L - 1, n_levels, n_levels)``; ``transitions[l, s, t]`` is the probability of
            moving from level ``s`` at layer ``l`` to level ``t`` at layer ``l + 1`` (zero where the
            move is not allowed). Each row sums to 1 over its allowed moves (Auto-DeepLab normalises
            beta over a node's outgoing transitions).
        first_levels: levels the first layer may take.
        start: optional probability of each first level (default: all allowed levels equally).

    Returns:
        the ``L`` levels of the path maximising the product of its transition probabilities
        (log-space dynamic programme; ties go to the lower level).
    """
    t = np.asarray(transitions, dtype=np.float64)
    if t.ndim != 3 or t.shape[1] != t.shape[2]:
        raise ValueError(f"transitions must be (L-1, levels, levels), got shape {t.shape}")
    n = t.shape[1]
    with np.errstate(divide="ignore"):
        logt = np.log(t)
        score = np.full(n, -np.inf)
        for f in first_levels:
            score[f] = 0.0 if start is None else float(np.log(start[f]))
    back: list[np.ndarray] = []
    for layer in range(t.shape[0]):
        cand = score[:, None] + logt[layer]  # from s to t
        best_from = cand.argmax(axis=0)
        score = cand[best_from, np.arange(n)]
        back.append(best_from)
    if np.isneginf(score).all():
        raise ValueError("no path through the trellis has non-zero probability")
    path = [int(score.argmax())]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return path[::-1]
