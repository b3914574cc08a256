"""Candidate relay paths per demand, as padded link/node index arrays for vectorised relay.

Single-path relay (the baseline) forwards a key hop by hop, XOR-encrypted with each link key: every
intermediate trusted node learns it. Multi-path relay splits the key over node-disjoint paths:
``xor`` (all paths needed; a relay learns one share, useless alone) or ``shamir`` (k of n paths).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np

from qverify.network.links import LinkArrays


@dataclass(frozen=True)
class Paths:
    """Candidate paths of every demand, padded.

    Attributes:
        links: int (D, P, L) link indices, -1 padding.
        inner: int (D, P, M) intermediate node indices, -1 padding.
        valid: bool (D, P): the candidate exists.
        length_km: float (D, P) path fibre length (inf if missing).
    """

    links: np.ndarray
    inner: np.ndarray
    valid: np.ndarray
    length_km: np.ndarray


def _bucket(width: int) -> int:
    """Next power of two ≥ ``width`` (≥ 1): path tensors of one network keep a few shapes whatever the
    demands, so a compiled simulation is reused across seeds instead of recompiled per demand set."""
    return 1 << max(width - 1, 0).bit_length()


def _pad(rows: list[list[list[int]]], width: int, paths: int) -> np.ndarray:
    d = len(rows)
    p = max(paths, max((len(r) for r in rows), default=1), 1)
    out = -np.ones((d, p, _bucket(max(width, 8))), dtype=np.int64)
    for i, r in enumerate(rows):
        for j, path in enumerate(r):
            out[i, j, : len(path)] = path
    return out


def candidate_paths(g: nx.Graph, links: LinkArrays, demands: np.ndarray, k: int = 3, disjoint: bool = False) -> Paths:
    """``k`` shortest simple paths (by fibre length) per demand, or ``k`` node-disjoint ones.

    Keys are relayed only through trusted nodes (node attribute ``trusted``): an untrusted node may
    be a demand's endpoint, never an inner relay. Demands with no such path get no valid path
    (reported unservable, not an error).
    """
    names = links.nodes
    link_of = links.link_of()
    idx = links.index()
    all_links: list[list[list[int]]] = []
    all_inner: list[list[list[int]]] = []
    lengths: list[list[float]] = []
    for s, t in demands.tolist():
        src, dst = names[s], names[t]
        paths: list[list[str]] = []
        relays = g.subgraph([n for n in g.nodes if n in (src, dst) or g.nodes[n].get("trusted", True)])
        if nx.has_path(relays, src, dst):
            if disjoint:
                paths = [list(p) for p in itertools.islice(nx.node_disjoint_paths(relays, src, dst), k)]
                paths.sort(key=lambda p: nx.path_weight(g, p, "length_km"))
            else:
                gen = nx.shortest_simple_paths(relays, src, dst, weight="length_km")
                paths = [list(p) for p in itertools.islice(gen, k)]
        as_idx = [[idx[n] for n in p] for p in paths]
        all_links.append([[link_of[(u, v)] for u, v in itertools.pairwise(p)] for p in as_idx])
        all_inner.append([p[1:-1] for p in as_idx])
        lengths.append([nx.path_weight(g, p, "length_km") for p in paths])
    width_l = max((len(p) for r in all_links for p in r), default=1)
    width_n = max((len(p) for r in all_inner for p in r), default=1)
    lk = _pad(all_links, width_l, k)
    inner = _pad(all_inner, width_n, k)
    p = lk.shape[1]
    valid = np.zeros((len(demands), p), dtype=bool)
    length = np.full((len(demands), p), np.inf)
    for i, r in enumerate(lengths):
        valid[i, : len(r)] = True
        length[i, : len(r)] = r
    return Paths(lk, inner, valid, length)


def choose_demands(
    n_nodes: int, n_demands: int, rng: np.random.Generator, allowed: np.ndarray | None = None
) -> np.ndarray:
    """``n_demands`` distinct (source, destination) pairs of distinct nodes, int (D, 2)."""
    pool = np.arange(n_nodes) if allowed is None else np.flatnonzero(allowed)
    pairs = [(int(a), int(b)) for a in pool for b in pool if a < b]
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    pick = rng.choice(len(pairs), size=min(n_demands, len(pairs)), replace=False)
    return np.array([pairs[i] for i in sorted(pick)], dtype=np.int64)
