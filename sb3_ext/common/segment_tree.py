"""Vectorized sum tree for proportional prioritized experience replay.

A textbook binary sum tree needs 20 levels for a million leaves and pays several array calls per
level. This tree is 64-ary and flat: the leaves are stored in groups of 64, one group per row of
a ``(groups, 65)`` array whose column 0 is always 0, and the sums of the groups form the level
above. Levels are stacked the same way until a level has at most 16,384 nodes; that top level is
searched with one ``cumsum`` + ``searchsorted``, so a million leaves need a single 64-way step
below the top.

Searching a batch is, per level, one row gather, one row-wise ``cumsum`` (the leading zero
column makes entry ``j`` the mass before child ``j``) and one batched ``searchsorted`` of each
remainder in its own row. Updating a batch rewrites the leaves and recomputes each touched
group's sum from its children (no accumulated drift). When a batch of priorities is written back
for exactly the leaves the last stratified sample returned, the leaf rows that sample gathered
are reused instead of gathered again. The cumsums and the row-wise searches run in torch on
views that share memory with the numpy arrays (torch has the batched search, and its cumsum is
several times faster than numpy's at these sizes); everything else is numpy, so single-leaf
writes on the insertion path stay plain array stores. Nothing loops over the elements of a
batch in Python.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch as th

_SHIFT = 6
_FANOUT = 1 << _SHIFT  # children per inner node
_ROW = _FANOUT + 1  # a group's row: a zero column, then its 64 children
_MAX_TOP = 16_384  # the top level is searched with one cumsum over at most this many nodes
_ONES = np.ones(_ROW)  # row sums as a matrix-vector product (faster than sum(axis=1))


def _grid_positions(nodes: np.ndarray) -> np.ndarray:
    """Flat positions of nodes in a ``(groups, 65)`` grid: node ``m`` sits at row ``m >> 6``, column ``1 + (m & 63)``."""
    return nodes + (nodes >> _SHIFT) + 1


class _SampledRows(NamedTuple):
    """What a search read at the leaf level, kept so that writing back the sampled leaves' priorities needs no second gather."""

    leaves: np.ndarray  # the leaf indices handed out (read-only)
    groups: np.ndarray  # their groups, non-decreasing
    rows: np.ndarray  # copies of those groups' rows, (n, 65)
    row_positions: np.ndarray  # flat positions of the leaves in ``rows``
    leaf_positions: np.ndarray  # flat positions of the leaves in the leaf grid


class _Workspace(NamedTuple):
    """Arrays reused by every search of one batch size (fewer fresh allocations, warmer caches)."""

    rows: list[np.ndarray]  # per level, the gathered rows, (n, 65)
    row_tensors: list[th.Tensor]  # torch views of their first 64 columns
    before: th.Tensor  # row-wise cumsums, (n, 64)
    before_array: np.ndarray  # flat numpy view of ``before``
    remaining: np.ndarray  # mass left inside each chosen node, (n,)
    remaining_tensor: th.Tensor  # torch view of ``remaining``, (n, 1)
    columns: th.Tensor  # searchsorted output, (n, 1): the chosen child's column in its row
    column_array: np.ndarray  # flat numpy view of ``columns``
    row_starts: np.ndarray  # 0, 65, 130, ...
    before_starts: np.ndarray  # 0, 64, 128, ...
    leaf_rows: np.ndarray  # flat view of ``rows[0]``
    strata: np.ndarray  # 0., 1., 2., ...: the slices of a stratified sample
    targets: np.ndarray  # a stratified sample's prefix-sum targets, (n,)


class SumTree:
    """Sum tree over ``capacity`` non-negative priorities.

    :meth:`update` rewrites a batch of leaves and refreshes their ancestors;
    :meth:`find_prefix_sum` maps a batch of values ``v`` in ``[0, total)`` to the leaves ``i``
    with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k``; :meth:`sample_stratified` draws one leaf per
    equal slice of the total. Each is ``O(batch * 64 * log_64 capacity)`` work in
    ``O(log_64 capacity)`` batched array calls, plus one cumsum over at most 16,384 top nodes per
    search. Sums are kept in float64.

    :param capacity: Number of leaves (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        # _grids[k] holds the nodes of level k (level 0: the leaves) in rows of 64 behind a zero
        # column; _top holds the nodes of the top level, one per group of the last grid.
        self._grids: list[np.ndarray] = []
        nodes = self.capacity
        while True:
            groups = -(-nodes // _FANOUT)
            self._grids.append(np.zeros((groups, _ROW)))
            nodes = groups
            if nodes <= _MAX_TOP:
                break
        self._top = np.zeros(nodes)
        # Leaves [start, stop) written by update_range whose ancestors are refreshed lazily, so
        # that inserting one transition costs a single array store.
        self._stale: tuple[int, int] | None = None
        self._link_arrays()

    def _link_arrays(self) -> None:
        self._leaves = self._grids[0].reshape(-1)  # flat view, positions from _grid_positions
        # Prefix sums of the top level behind a leading 0, and a torch view of the top for the
        # cumsum that fills them.
        self._top_prefix = np.zeros(self._top.size + 1)
        self._top_tensor = th.from_numpy(self._top)
        self._top_prefix_tensor = th.from_numpy(self._top_prefix)[1:]
        self._top_inclusive = self._top_prefix[1:-1]
        self._workspaces: dict[int, _Workspace] = {}
        self._sampled: _SampledRows | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_leaves", "_top_prefix", "_top_tensor", "_top_prefix_tensor", "_top_inclusive", "_workspaces", "_sampled"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._link_arrays()

    @property
    def depth(self) -> int:
        """Number of 64-way levels between the top and the leaves."""
        return len(self._grids)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        self._refresh_stale()
        return float(self._top.sum())

    @property
    def priorities(self) -> np.ndarray:
        """Copy of the ``capacity`` leaf priorities."""
        return self._grids[0][:, 1:].reshape(-1)[: self.capacity].copy()

    def __len__(self) -> int:
        return self.capacity

    def __getitem__(self, indices: np.ndarray | int) -> np.ndarray:
        """Priorities of the given leaves."""
        return self._leaves[_grid_positions(self._check_indices(indices))]

    def leaf_priorities(self, indices: np.ndarray) -> np.ndarray:
        """Priorities of leaves returned by a search, without the checks of ``tree[indices]``."""
        return self._leaves[_grid_positions(indices)]

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

    # ------------------------------------------------------------------------------- writing
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

    def update_sorted(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """:meth:`update` without the checks, for trusted callers.

        If ``indices`` is the very array the last :meth:`sample_stratified` returned and nothing
        was written since, the leaf rows that search gathered are reused.

        :param indices: int64 leaf indices in ``[0, capacity)`` in non-decreasing order, as
            returned by :meth:`sample_stratified`; a repeated index keeps its last priority.
        :param priorities: Finite non-negative float64 priorities, one per index.
        """
        sampled = self._sampled
        if sampled is not None and indices is sampled.leaves and self._stale is None:
            self._sampled = None
            rows, groups = sampled.rows, sampled.groups
            # Each gathered row copy takes its own leaf's priority; the grid takes them all (a
            # repeated leaf keeps its last, as put() writes in order).
            rows.reshape(-1).put(sampled.row_positions, priorities)
            self._leaves.put(sampled.leaf_positions, priorities)
            if groups.size > 1:
                shared = groups[1:] == groups[:-1]
                if shared.any():
                    # Copies of one group's row hold only their own leaf's write: read those
                    # rows back from the grid, which holds every write. (With a batch of 256
                    # from a million leaves, a batch without such a pair is the exception.)
                    again = np.zeros(groups.size, dtype=bool)
                    again[1:] = shared
                    again[:-1] |= shared
                    again = np.flatnonzero(again)
                    rows[again] = self._grids[0].take(groups[again], axis=0)
            self._write_sums(groups, rows @ _ONES)
            return
        if indices.size > 1:
            last = np.empty(indices.size, dtype=bool)
            np.not_equal(indices[1:], indices[:-1], out=last[:-1])
            last[-1] = True
            if not last.all():
                indices, priorities = indices[last], priorities[last]
        self._write(indices, priorities)

    def _write(self, nodes: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``nodes`` (valid, without repeats) to ``values`` and refresh their ancestors."""
        self._refresh_stale()
        self._sampled = None
        self._leaves[_grid_positions(nodes)] = values
        nodes = nodes >> _SHIFT
        self._write_sums(nodes, self._grids[0].take(nodes, axis=0) @ _ONES)

    def _write_sums(self, groups: np.ndarray, sums: np.ndarray) -> None:
        """Store the fresh sums of leaf groups ``groups`` one level up and refresh the levels above."""
        for level in range(1, len(self._grids)):
            # Repeated groups are harmless: each write stores the same freshly computed sum.
            self._grids[level].reshape(-1)[_grid_positions(groups)] = sums
            groups = groups >> _SHIFT
            sums = self._grids[level].take(groups, axis=0) @ _ONES
        self._top[groups] = sums

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
        self._sampled = None
        stop = start + count
        first_group = start >> _SHIFT
        if first_group == (stop - 1) >> _SHIFT:  # one group: a contiguous slice of its row
            offset = first_group + 1
            self._leaves[start + offset : stop + offset] = priorities
        else:
            self._leaves[_grid_positions(np.arange(start, stop))] = priorities
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
        for level, grid in enumerate(self._grids):
            first, last = first >> _SHIFT, last >> _SHIFT
            sums = grid[first : last + 1] @ _ONES
            if level + 1 < len(self._grids):
                parents = self._grids[level + 1].reshape(-1)
                parents[_grid_positions(np.arange(first, last + 1))] = sums
            else:
                self._top[first : last + 1] = sums

    # ------------------------------------------------------------------------------ searching
    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices ``i`` with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k`` for each value ``v``.

        Values are clipped into ``[0, total)``. The search never returns a zero-priority leaf
        while the total is positive (should rounding carry a value past the last positive leaf
        of a group, it goes to the nearest positive leaf on its left).

        :param values: Prefix-sum targets, any shape.
        :return: int64 leaf indices with the shape of ``values``.
        """
        total = self._prefix_top()
        targets = np.clip(np.asarray(values, dtype=np.float64).ravel(), 0.0, math.nextafter(total, 0.0))
        return self._search(targets, self._workspace(targets.size))[0].reshape(np.shape(values))

    def sample_stratified(self, uniforms: np.ndarray, return_priorities: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """One leaf per equal slice of the total: slice ``j`` gives the leaf at ``(j + uniforms[j]) * total / n``.

        Each draw lands on leaf ``i`` with probability ``p_i / total`` on average over the
        slices, with less spread in the batch composition than independent draws.

        :param uniforms: ``n`` values in ``[0, 1)``, e.g. ``np.random.random_sample(n)``.
        :param return_priorities: Also return the leaves' priorities (read by the search anyway).
        :return: ``n`` int64 leaf indices in increasing order, read-only (and their priorities).
        """
        total = self._prefix_top()
        n = len(uniforms)
        ws = self._workspace(n)
        targets = np.add(ws.strata, uniforms, out=ws.targets)
        targets *= total / max(n, 1)
        np.minimum(targets, math.nextafter(total, 0.0), out=targets)
        leaves, priorities = self._search(targets, ws, keep_rows=True)
        leaves.flags.writeable = False
        return (leaves, priorities) if return_priorities else leaves

    def _prefix_top(self) -> float:
        """Fill the top level's prefix sums (entry ``j``: the mass of top nodes ``0 .. j - 1``); return the total."""
        self._refresh_stale()
        th.cumsum(self._top_tensor, 0, out=self._top_prefix_tensor)
        total = self._top_prefix[-1]
        if not total > 0.0:
            raise ValueError("cannot search a sum tree whose total priority is 0")
        return total

    def _workspace(self, n: int) -> _Workspace:
        workspace = self._workspaces.get(n)
        if workspace is None:
            if len(self._workspaces) >= 8:  # callers searching batches of many sizes
                self._workspaces.clear()
            rows = [np.empty((n, _ROW)) for _ in self._grids]
            before = th.empty((n, _FANOUT), dtype=th.float64)
            remaining = np.empty(n)
            columns = th.empty((n, 1), dtype=th.int64)
            workspace = self._workspaces[n] = _Workspace(
                rows, [th.from_numpy(r)[:, :_FANOUT] for r in rows], before, before.numpy().reshape(-1),
                remaining, th.from_numpy(remaining).unsqueeze(1), columns, columns.numpy().reshape(-1),
                np.arange(0, n * _ROW, _ROW), np.arange(0, n * _FANOUT, _FANOUT),
                rows[0].reshape(-1), np.arange(n, dtype=np.float64), np.empty(n),
            )
        return workspace

    def _search(self, targets: np.ndarray, ws: _Workspace, keep_rows: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Leaves and priorities for ``targets`` in ``[0, total)`` (``ws``: the workspace of their size); call :meth:`_prefix_top` first."""
        prefix = self._top_prefix
        # Searching the inclusive sums of all top nodes but the last gives indices <= the last.
        nodes = np.searchsorted(self._top_inclusive, targets, side="right")
        # Mass left inside the chosen node; clamped at 0 so that an ulp of rounding below a
        # node's start still lands on its first child with positive mass.
        np.subtract(targets, prefix.take(nodes), out=ws.remaining)
        np.maximum(ws.remaining, 0.0, out=ws.remaining)
        for level in range(len(self._grids) - 1, -1, -1):
            # mode="clip" (the nodes are in range) lets take() write straight into the
            # workspace; the default mode="raise" gathers into a temporary and copies it over.
            rows = self._grids[level].take(nodes, axis=0, out=ws.rows[level], mode="clip")
            # Entry j of the cumsum of a row's first 64 columns is the mass of the children
            # before child j (column 0 is 0), so the number of entries <= the remainder is 1 +
            # the child holding it: equal entries (zero-mass children) are skipped, and a
            # remainder that rounding pushed past the group's total takes the last child.
            th.cumsum(ws.row_tensors[level], 1, out=ws.before)
            th.searchsorted(ws.before, ws.remaining_tensor, right=True, out=ws.columns)
            if level:
                child = ws.column_array - 1
                np.subtract(ws.remaining, ws.before_array.take(ws.before_starts + child), out=ws.remaining)
                np.maximum(ws.remaining, 0.0, out=ws.remaining)
                nodes <<= _SHIFT
                nodes += child
        row_positions = ws.row_starts + ws.column_array
        priorities = ws.leaf_rows.take(row_positions)
        groups = nodes
        # Leaf j of group g sits at column 1 + j of grid row g: flat position 65 g + column, and
        # the leaf index is 64 g + column - 1 = position - g - 1.
        leaf_positions = groups * _ROW
        leaf_positions += ws.column_array
        leaves = leaf_positions - groups
        leaves -= 1
        self._sampled = None
        if priorities.size and not priorities.min() > 0.0:
            # Rounding can (rarely) carry a value past the last positive leaf of a group; give
            # those few to the nearest positive leaf on their left.
            stray = priorities <= 0.0
            positive = np.flatnonzero(self.priorities > 0.0)
            left = np.searchsorted(positive, leaves[stray], side="right") - 1
            leaves[stray] = positive[np.maximum(left, 0)]
            return leaves, self._leaves[_grid_positions(leaves)]
        if keep_rows:
            self._sampled = _SampledRows(leaves, groups, rows, row_positions, leaf_positions)
        return leaves, priorities
