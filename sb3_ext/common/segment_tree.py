"""Vectorized sum tree for proportional prioritized experience replay.

A textbook binary sum tree needs 20 levels for a million leaves, and numpy pays several calls
per level. This tree is 32-ary: each level is a flat array of node sums whose groups of 32
consecutive entries are the children of one node of the level above, and the top level (at most
2048 nodes) is searched with one ``cumsum`` + ``searchsorted``. A million leaves then need two
levels of 32-way steps. Every row operation over a batch of groups is a small matrix product
(row sums with a ones vector, prefix sums with a triangular matrix), which numpy runs far faster
than reductions along short axes. Each operation handles the whole batch in a few numpy calls
per level, never one Python iteration per element, and every sum is recomputed from its children
(no accumulated drift).
"""

from __future__ import annotations

import math

import numpy as np

_SHIFT = 5
_FANOUT = 1 << _SHIFT  # children per inner node
_MAX_TOP = 2048  # the top level is searched with one cumsum over at most this many nodes
# Exclusive prefix sums of a row of children as one matrix product: (c @ M)[j] = sum_{i<j} c[i].
_EXCLUSIVE = np.triu(np.ones((_FANOUT, _FANOUT)), k=1)
_ONES = np.ones(_FANOUT)


class SumTree:
    """Sum tree over ``capacity`` non-negative priorities.

    :meth:`update` rewrites a batch of leaves and refreshes their ancestors;
    :meth:`find_prefix_sum` maps a batch of values ``v`` in ``[0, total)`` to the leaves ``i``
    with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k``; :meth:`sample_stratified` draws one leaf per
    equal slice of the total. Each is ``O(batch * 32 * log_32 capacity)`` numpy work in
    ``O(log_32 capacity)`` numpy calls, plus one cumsum over at most 2048 top nodes per search.

    :param capacity: Number of leaves (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        n_inner = 0
        while -(-self.capacity // _FANOUT**n_inner) > _MAX_TOP:
            n_inner += 1
        n_top = -(-self.capacity // _FANOUT**n_inner)
        # _levels[0] are the (zero-padded) leaves, _levels[-1] the top nodes. float64 keeps the
        # sums exact enough for millions of leaves.
        self._levels = [np.zeros(n_top * _FANOUT ** (n_inner - level)) for level in range(n_inner + 1)]
        # Leaves [start, stop) written by update_range whose ancestors are refreshed lazily, so
        # that inserting one transition costs a single array write.
        self._stale: tuple[int, int] | None = None

    @property
    def depth(self) -> int:
        """Number of 32-way levels between the top and the leaves."""
        return len(self._levels) - 1

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        self._refresh_stale()
        return float(self._levels[-1].sum())

    @property
    def priorities(self) -> np.ndarray:
        """Copy of the ``capacity`` leaf priorities."""
        return self._levels[0][: self.capacity].copy()

    def __len__(self) -> int:
        return self.capacity

    def __getitem__(self, indices: np.ndarray | int) -> np.ndarray:
        """Priorities of the given leaves."""
        return self._levels[0][self._check_indices(indices)]

    def leaf_priorities(self, indices: np.ndarray) -> np.ndarray:
        """Priorities of leaves returned by a search, without the checks of ``tree[indices]``."""
        return self._levels[0][indices]

    def _check_indices(self, indices: np.ndarray | int) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise ValueError(f"indices must lie in [0, {self.capacity}), got min {indices.min()}, max {indices.max()}")
        return indices.astype(np.int64, copy=False)

    @staticmethod
    def _check_priorities(values: np.ndarray) -> None:
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0):
            raise ValueError("priorities must be finite and >= 0")

    def update(self, indices: np.ndarray, priorities: np.ndarray | float) -> None:
        """Set ``p[indices] = priorities`` and refresh their ancestors.

        :param indices: Leaf indices, any shape. If an index repeats, its last priority wins.
        :param priorities: Non-negative finite priorities, broadcastable to ``indices``.
        """
        nodes = self._check_indices(indices).ravel()
        values = np.broadcast_to(np.asarray(priorities, dtype=np.float64), np.shape(indices)).ravel()
        self._check_priorities(values)
        if nodes.size > 1:
            # Keep the last occurrence of each index so that repeated indices are well defined.
            # Batches from sample_stratified are sorted, so their repeats are adjacent.
            if (nodes[1:] >= nodes[:-1]).all():
                last = np.append(nodes[1:] != nodes[:-1], True)
                nodes, values = nodes[last], values[last]
            else:
                nodes, last = np.unique(nodes[::-1], return_index=True)
                values = values[::-1][last]
        self._write(nodes, values)

    def _write(self, nodes: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``nodes`` (valid, without repeats) to ``values`` and refresh their ancestors."""
        self._refresh_stale()
        self._levels[0][nodes] = values
        # Repeated parents are harmless: each write stores the same freshly computed sum.
        for children, parents in zip(self._levels[:-1], self._levels[1:], strict=True):
            nodes = nodes >> _SHIFT
            parents[nodes] = children.reshape(-1, _FANOUT)[nodes] @ _ONES

    def update_sorted(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """:meth:`update` without the checks, for trusted callers.

        :param indices: int64 leaf indices in ``[0, capacity)`` in non-decreasing order, as
            returned by :meth:`sample_stratified`; a repeated index keeps its last priority.
        :param priorities: Finite non-negative priorities, one per index.
        """
        if indices.size > 1:
            last = np.empty(indices.size, dtype=bool)
            np.not_equal(indices[1:], indices[:-1], out=last[:-1])
            last[-1] = True
            indices, priorities = indices[last], priorities[last]
        self._write(indices, priorities)

    def update_range(self, start: int, priorities: np.ndarray | float, count: int = 1) -> None:
        """Set the consecutive leaves ``start .. start + count - 1``: the fast path for insertion.

        Their ancestors are refreshed lazily, by the next search, update or ``total``.

        :param start: First leaf.
        :param priorities: Non-negative finite priorities, broadcastable to ``(count,)``.
        :param count: Number of leaves.
        """
        if start < 0 or count < 1 or start + count > self.capacity:
            raise ValueError(f"leaves [{start}, {start + count}) must lie in [0, {self.capacity})")
        if isinstance(priorities, (float, int)):
            if not (math.isfinite(priorities) and priorities >= 0.0):
                raise ValueError("priorities must be finite and >= 0")
        else:
            self._check_priorities(np.asarray(priorities, dtype=np.float64))
        self._levels[0][start : start + count] = priorities
        stop = start + count
        if self._stale is None:
            self._stale = (start, stop)
        elif start <= self._stale[1] and stop >= self._stale[0]:  # overlapping or adjacent
            self._stale = (min(start, self._stale[0]), max(stop, self._stale[1]))
        else:
            self._refresh_stale()
            self._stale = (start, stop)

    def _refresh_stale(self) -> None:
        if self._stale is None:
            return
        first, last = self._stale[0], self._stale[1] - 1
        self._stale = None
        for children, parents in zip(self._levels[:-1], self._levels[1:], strict=True):
            first, last = first >> _SHIFT, last >> _SHIFT
            parents[first : last + 1] = children[first * _FANOUT : (last + 1) * _FANOUT].reshape(-1, _FANOUT) @ _ONES

    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices ``i`` with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k`` for each value ``v``.

        Values are clipped into ``[0, total)``. The search never returns a zero-priority leaf
        while the total is positive (should rounding carry a value past the last positive leaf
        of a group, it goes to the nearest positive leaf on its left).

        :param values: Prefix-sum targets, any shape.
        :return: int64 leaf indices with the shape of ``values``.
        """
        top_prefix = self._top_prefix()
        targets = np.clip(np.asarray(values, dtype=np.float64).ravel(), 0.0, np.nextafter(top_prefix[-1], 0.0))
        return self._search(targets, top_prefix).reshape(np.shape(values))

    def sample_stratified(self, uniforms: np.ndarray) -> np.ndarray:
        """One leaf per equal slice of the total: slice ``j`` gives the leaf at ``(j + uniforms[j]) * total / n``.

        Each draw lands on leaf ``i`` with probability ``p_i / total`` on average over the
        slices, with less spread in the batch composition than independent draws.

        :param uniforms: ``n`` values in ``[0, 1)``, e.g. ``np.random.random_sample(n)``.
        :return: ``n`` int64 leaf indices in increasing order.
        """
        top_prefix = self._top_prefix()
        total = top_prefix[-1]
        uniforms = np.asarray(uniforms, dtype=np.float64).ravel()
        targets = (np.arange(uniforms.size) + uniforms) * (total / uniforms.size)
        np.minimum(targets, np.nextafter(total, 0.0), out=targets)
        return self._search(targets, top_prefix)

    def _top_prefix(self) -> np.ndarray:
        # Prefix sums of the top nodes with a leading 0: entry j is the mass before node j.
        self._refresh_stale()
        top_prefix = np.zeros(self._levels[-1].size + 1)
        np.cumsum(self._levels[-1], out=top_prefix[1:])
        if not top_prefix[-1] > 0.0:
            raise ValueError("cannot search a sum tree whose total priority is 0")
        return top_prefix

    def _search(self, targets: np.ndarray, top_prefix: np.ndarray) -> np.ndarray:
        nodes = np.searchsorted(top_prefix[1:], targets, side="right")
        np.minimum(nodes, top_prefix.size - 2, out=nodes)
        remaining = targets - top_prefix[nodes]
        batch = np.arange(targets.size)
        for children in reversed(self._levels[:-1]):
            rows = children.reshape(-1, _FANOUT)[nodes]
            before = rows @ _EXCLUSIVE
            # The chosen child is the first whose inclusive prefix sum exceeds the remainder; the
            # last child takes any remainder that rounding pushed past the group's total.
            inclusive = before + rows
            inclusive[:, -1] = np.inf
            child = np.argmax(remaining[:, None] < inclusive, axis=1)
            # (May dip an ulp below 0, which still selects the first child with positive mass.)
            remaining -= before[batch, child]
            nodes = (nodes << _SHIFT) + child
        # Rounding can (rarely) carry a value past the last positive leaf of a group; give
        # those few to the nearest positive leaf on their left.
        stray = self._levels[0][nodes] <= 0.0
        if stray.any():
            positive = np.flatnonzero(self._levels[0] > 0.0)
            left = np.searchsorted(positive, nodes[stray], side="right") - 1
            nodes[stray] = positive[np.maximum(left, 0)]
        return nodes
