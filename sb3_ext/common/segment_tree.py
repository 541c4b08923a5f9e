"""Binary sum tree for proportional prioritized experience replay (Schaul et al., 2016, appendix B.2.1).

One flat float64 array: node 1 is the root, node ``k`` has the children ``2k`` and ``2k + 1``, and
priority ``i`` is leaf ``n_leaves + i`` (``n_leaves``: the capacity rounded up to a power of two;
the padding leaves stay 0). Each inner node is recomputed from its two children on every write.
Batch updates and prefix-sum searches are compiled with numba (the one place in the project with
compiled code) and walk the tree one level at a time for the whole batch, so that the processor
overlaps the cache misses of the batch's independent memory accesses. ``cache=True`` keeps the
machine code in ``__pycache__`` (or numba's user cache directory): only the first use on a machine
compiles (about 2 s of CPU), later processes load it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _update(nodes: np.ndarray, capacity: int, indices: np.ndarray, priorities: np.ndarray) -> int:
    """Write ``priorities`` at the leaves ``indices``; return the position of the first invalid pair, else -1."""
    n_leaves = nodes.size // 2
    for k in range(indices.size):
        if not (0 <= indices[k] < capacity and 0.0 <= priorities[k] < np.inf):  # NaN fails too
            return k
    parents = np.empty(indices.size, np.int64)
    for k in range(indices.size):  # in order, so that a repeated index keeps its last priority
        nodes[n_leaves + indices[k]] = priorities[k]
        parents[k] = (n_leaves + indices[k]) >> 1
    while parents.size and parents[0] > 0:  # level by level up to the root (the leaves share a depth)
        for k in range(parents.size):
            node = parents[k]
            nodes[node] = nodes[2 * node] + nodes[2 * node + 1]
            parents[k] = node >> 1
    return -1


@njit(cache=True)
def _update_range(nodes: np.ndarray, start: int, count: int, priority: float) -> None:
    """Set the leaves ``start .. start + count - 1`` to ``priority`` and refresh their ancestors."""
    first, last = nodes.size // 2 + start, nodes.size // 2 + start + count - 1
    nodes[first : last + 1] = priority
    while first > 1:
        first, last = first >> 1, last >> 1
        for node in range(first, last + 1):
            nodes[node] = nodes[2 * node] + nodes[2 * node + 1]


@njit(cache=True)
def _find_prefix_sum(
    nodes: np.ndarray, values: np.ndarray, top: float, leaves: np.ndarray, priorities: np.ndarray
) -> None:
    """Fill ``leaves`` and ``priorities`` with the leaf holding each prefix sum in ``values`` (clipped into ``[0, top]``)."""
    n_leaves = nodes.size // 2
    remaining = np.empty(values.size)
    for k in range(values.size):
        remaining[k] = min(max(values[k], 0.0), top)
    leaves[:] = 1  # the root; each level below moves every entry to a child
    while leaves.size and leaves[0] < n_leaves:
        for k in range(values.size):
            left = 2 * leaves[k]
            mass = nodes[left]
            # Go right when the value lies past the left child's mass, unless rounding carried it
            # past the last positive leaf: never descend into a subtree of mass 0.
            right = (remaining[k] >= mass) & (nodes[left + 1] > 0.0)
            remaining[k] = remaining[k] - mass if right else remaining[k]
            leaves[k] = left + np.int64(right)
    for k in range(values.size):
        priorities[k] = nodes[leaves[k]]
        leaves[k] -= n_leaves


class SumTree:
    """Sum tree over ``capacity`` non-negative priorities (float64): batch updates and searches in ``O(batch * log capacity)``.

    :param capacity: Number of leaves (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self.nodes = np.zeros(2 << (self.capacity - 1).bit_length())  # 2 * n_leaves, node 0 unused

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.nodes[1])

    @property
    def priorities(self) -> np.ndarray:
        """Copy of the ``capacity`` leaf priorities."""
        return self.nodes[self.nodes.size // 2 :][: self.capacity].copy()

    def __getitem__(self, indices: np.ndarray | int) -> np.ndarray:
        """Priorities of the given leaves."""
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu" or (
            indices.size and (indices.min() < 0 or indices.max() >= self.capacity)
        ):
            raise ValueError(f"indices must be integers in [0, {self.capacity}), got {indices!r}")
        return self.nodes[self.nodes.size // 2 + indices]

    def update(self, indices: np.ndarray, priorities: np.ndarray | float) -> None:
        """Set ``p[indices] = priorities`` and refresh their ancestors; nothing is written if a pair is invalid.

        :param indices: Integer leaf indices in ``[0, capacity)``, any shape. If an index repeats,
            its last priority wins (as the same writes one at a time would leave it).
        :param priorities: Non-negative finite priorities, broadcastable to ``indices``.
        """
        indices, values = np.asarray(indices), np.asarray(priorities, dtype=np.float64)
        if indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        if values.shape != indices.shape:
            values = np.broadcast_to(values, indices.shape)
        values = np.ascontiguousarray(values.reshape(-1))
        bad = _update(
            self.nodes, self.capacity, np.ascontiguousarray(indices.reshape(-1), dtype=np.int64), values
        )
        if bad >= 0:
            got = f"got index {indices.reshape(-1)[bad]} with priority {values[bad]}"
            raise ValueError(
                f"indices must lie in [0, {self.capacity}) and priorities must be finite and >= 0, {got}"
            )

    def update_range(self, start: int, count: int, priority: float) -> None:
        """Set the ``count`` consecutive leaves from ``start`` to one priority (the insertion path)."""
        if not (0 <= start and 1 <= count and start + count <= self.capacity):
            raise ValueError(f"leaves [{start}, {start + count}) must lie in [0, {self.capacity})")
        if not (math.isfinite(priority) and priority >= 0.0):
            raise ValueError(f"priority must be finite and >= 0, got {priority}")
        _update_range(self.nodes, int(start), int(count), float(priority))

    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices ``i`` with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k`` for each value ``v``.

        Values are clipped into ``[0, total)``; no zero-priority leaf is returned.

        :param values: Prefix-sum targets, any shape.
        :return: int64 leaf indices with the shape of ``values``.
        """
        values = np.asarray(values, dtype=np.float64)
        if np.isnan(values).any():
            raise ValueError("values must not be NaN")
        return self._search(np.ascontiguousarray(values.reshape(-1)))[0].reshape(values.shape)

    def sample_stratified(self, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One leaf per equal slice of the total: slice ``j`` gives the leaf at ``(j + uniforms[j]) * total / n``.

        Each draw lands on leaf ``i`` with probability ``p_i / total`` on average over the slices,
        with less spread in the batch composition than independent draws.

        :param uniforms: ``n`` values in ``[0, 1)``, e.g. ``np.random.random_sample(n)``.
        :return: ``n`` int64 leaf indices in non-decreasing order, and their priorities.
        """
        return self._search((np.arange(len(uniforms)) + uniforms) * (self.total / max(len(uniforms), 1)))

    def _search(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.nodes[1] > 0.0:
            raise ValueError("cannot search a sum tree whose total priority is 0")
        leaves, priorities = np.empty(values.size, np.int64), np.empty(values.size)
        _find_prefix_sum(self.nodes, values, math.nextafter(self.nodes[1], 0.0), leaves, priorities)
        return leaves, priorities
