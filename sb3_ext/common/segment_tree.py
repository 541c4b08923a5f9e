"""Vectorized sum tree for proportional prioritized experience replay.

A complete binary tree stored in one flat array: node ``1`` is the root, node ``k`` has children
``2k`` and ``2k + 1``, and the leaves ``capacity_pow2 .. 2 * capacity_pow2 - 1`` hold the
priorities. Every operation handles a whole batch of indices with one numpy call per tree level
(about 20 levels for a million leaves), never one Python iteration per element.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Sum tree over ``capacity`` non-negative priorities.

    Leaf ``i`` stores priority ``p_i``; every inner node stores the sum of its two children, so
    the root holds ``sum_i p_i``. :meth:`update` rewrites a batch of leaves and recomputes their
    ancestors, :meth:`find_prefix_sum` maps a batch of values ``v`` in ``[0, total)`` to the
    leaves ``i`` with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k``, both in ``O(batch * log capacity)``.

    :param capacity: Number of leaves (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self._depth = max(0, (self.capacity - 1).bit_length())
        self._first_leaf = 1 << self._depth
        # Node 0 is unused; float64 keeps the partial sums exact enough for a million leaves.
        self._nodes = np.zeros(2 * self._first_leaf, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities (the root)."""
        return float(self._nodes[1])

    @property
    def priorities(self) -> np.ndarray:
        """Read-only view of the ``capacity`` leaf priorities."""
        view = self._nodes[self._first_leaf : self._first_leaf + self.capacity]
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self.capacity

    def __getitem__(self, indices: np.ndarray | int) -> np.ndarray:
        """Priorities of the given leaves."""
        return self._nodes[self._leaf_nodes(indices)]

    def _leaf_nodes(self, indices: np.ndarray | int) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise ValueError(f"indices must lie in [0, {self.capacity}), got min {indices.min()}, max {indices.max()}")
        return indices.astype(np.int64) + self._first_leaf

    def update(self, indices: np.ndarray, priorities: np.ndarray | float) -> None:
        """Set ``p[indices] = priorities`` and refresh every ancestor sum.

        :param indices: Leaf indices, any shape. If an index repeats, its last priority wins.
        :param priorities: Non-negative finite priorities, broadcastable to ``indices``.
        """
        nodes = self._leaf_nodes(indices).ravel()
        values = np.broadcast_to(np.asarray(priorities, dtype=np.float64), np.shape(indices)).ravel()
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0):
            raise ValueError("priorities must be finite and >= 0")
        if nodes.size > 1:
            # Keep the last occurrence of each index so that repeated indices are well defined.
            unique_reversed, first_in_reversed = np.unique(nodes[::-1], return_index=True)
            nodes, values = unique_reversed, values[::-1][first_in_reversed]
        self._nodes[nodes] = values
        # Repeated parents are harmless: each write stores the same freshly computed sum.
        for _ in range(self._depth):
            nodes = nodes >> 1
            left = nodes << 1
            self._nodes[nodes] = self._nodes[left] + self._nodes[left + 1]

    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices ``i`` with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k`` for each value ``v``.

        Values are clipped into ``[0, total)``; the search never returns a zero-priority leaf
        while the total is positive (floating-point ties at a boundary go to the neighbour with
        positive mass).

        :param values: Prefix-sum targets, any shape.
        :return: int64 leaf indices with the shape of ``values``.
        """
        if self.total <= 0.0:
            raise ValueError("cannot search a sum tree whose total priority is 0")
        shape = np.shape(values)
        remaining = np.clip(np.asarray(values, dtype=np.float64).ravel(), 0.0, np.nextafter(self.total, 0.0))
        nodes = np.ones(remaining.size, dtype=np.int64)
        for _ in range(self._depth):
            nodes <<= 1
            left_sum = self._nodes[nodes]
            go_right = remaining >= left_sum
            np.subtract(remaining, left_sum, out=remaining, where=go_right)
            nodes += go_right
        # Rounding can (rarely) push a value one leaf past the last positive one; redo those
        # few with a search that only enters subtrees of positive mass.
        stray = self._nodes[nodes] <= 0.0
        if stray.any():
            nodes[stray] = self._careful_search(np.asarray(values, dtype=np.float64).ravel()[stray])
        return (nodes - self._first_leaf).reshape(shape)

    def _careful_search(self, values: np.ndarray) -> np.ndarray:
        remaining = np.clip(values, 0.0, np.nextafter(self.total, 0.0))
        nodes = np.ones(remaining.size, dtype=np.int64)
        for _ in range(self._depth):
            nodes <<= 1
            left_sum = self._nodes[nodes]
            go_right = ((remaining >= left_sum) & (self._nodes[nodes + 1] > 0.0)) | (left_sum <= 0.0)
            remaining = np.where(go_right, np.maximum(remaining - left_sum, 0.0), remaining)
            nodes += go_right
        return nodes
