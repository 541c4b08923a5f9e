"""The sum tree of ``sb3_ext.common.segment_tree``: its layout, its exact error messages and the
edges of its arguments (the randomized checks against a flat reference are in ``test_per.py``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sb3_ext.common.segment_tree import SumTree


@pytest.mark.parametrize(("capacity", "n_nodes"), [(1, 2), (2, 4), (3, 8), (4, 8), (5, 16), (8, 16), (9, 32)])
def test_capacity_rounds_up_to_a_power_of_two_leaves(capacity: int, n_nodes: int) -> None:
    """``2 * n_leaves`` nodes, ``n_leaves`` the capacity rounded up to a power of two."""
    tree = SumTree(np.int64(capacity))
    assert tree.capacity == capacity and type(tree.capacity) is int
    assert tree.nodes.shape == (n_nodes,) and tree.nodes.dtype == np.float64 and not tree.nodes.any()
    tree.update_range(0, capacity, 2.0)
    assert tree.total == 2.0 * capacity
    np.testing.assert_array_equal(tree.nodes[n_nodes // 2 :][:capacity], np.full(capacity, 2.0))


@pytest.mark.parametrize("capacity", [0, -3, 2.5, 4.0, True, "4", None])
def test_capacity_must_be_an_integer_of_at_least_one(capacity) -> None:
    with pytest.raises(
        ValueError, match=rf"^capacity must be an integer >= 1, got {re.escape(repr(capacity))}$"
    ):
        SumTree(capacity)


def test_reading_leaves_checks_their_indices_with_an_exact_message() -> None:
    tree = SumTree(5)
    tree.update(np.arange(5), np.arange(1.0, 6.0))
    assert tree[np.uint8(4)] == 5.0 and tree[0] == 1.0
    assert tree[np.array([], dtype=np.int64)].shape == (0,)
    for bad in (np.array([5]), np.array([0, -1]), np.array([1.0]), np.array([], dtype=np.float64)):
        with pytest.raises(
            ValueError, match=rf"^indices must be integers in \[0, 5\), got {re.escape(repr(bad))}$"
        ):
            tree[bad]


def test_update_messages_name_the_first_bad_pair_and_scalars_broadcast() -> None:
    tree = SumTree(4)
    with pytest.raises(ValueError, match=r"^indices must be integers, got dtype float64$"):
        tree.update(np.array([0.0, 1.0]), 1.0)
    message = r"^indices must lie in \[0, 4\) and priorities must be finite and >= 0, got index {} with priority {}$"
    with pytest.raises(ValueError, match=message.format(4, r"1\.0")):
        tree.update([0, 4, 5], [2.0, 1.0, 3.0])
    with pytest.raises(ValueError, match=message.format(2, "-0.5")):
        tree.update([1, 2], [0.0, -0.5])
    with pytest.raises(ValueError, match=message.format(3, "nan")):
        tree.update([[0, 3]], [[1.0, np.nan]])
    assert tree.total == 0.0
    tree.update(np.array([[0, 2], [3, 2]]), 1.5)  # one priority for every index
    np.testing.assert_array_equal(tree.priorities, [1.5, 0.0, 1.5, 1.5])
    tree.update(np.array([1, 3]), np.array([[0.5, 4.0]]).reshape(-1))
    np.testing.assert_array_equal(tree.priorities, [1.5, 0.5, 1.5, 4.0])
    assert tree.total == 7.5 and tree.nodes[2] == 2.0 and tree.nodes[3] == 5.5


def test_update_range_accepts_the_last_leaves_and_names_the_bad_range() -> None:
    tree = SumTree(4)
    tree.update_range(3, 1, 2.0)  # start + count == capacity: the last leaf
    tree.update_range(0, 2, 0.5)
    np.testing.assert_array_equal(tree.priorities, [0.5, 0.5, 0.0, 2.0])
    tree.update_range(2, 1, 0.0)  # priority 0 is allowed
    assert tree.total == 3.0
    for start, count in ((3, 2), (0, 0), (4, 1), (-1, 1)):
        with pytest.raises(ValueError, match=rf"^leaves \[{start}, {start + count}\) must lie in \[0, 4\)$"):
            tree.update_range(start, count, 1.0)
    with pytest.raises(ValueError, match=r"^priority must be finite and >= 0, got inf$"):
        tree.update_range(0, 1, np.inf)


def test_one_stratified_draw_searches_the_whole_total() -> None:
    """With one uniform, the single slice is the whole total: the draw is ``u * total``."""
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))  # cumulative 1, 3, 6, 10
    for u, leaf in ((0.05, 0), (0.25, 1), (0.55, 2), (0.65, 3), (0.999, 3)):
        leaves, priorities = tree.sample_stratified(np.array([u]))
        assert leaves.tolist() == [leaf] and priorities.tolist() == [leaf + 1.0]
    # Two slices of 5: u = 0.5 lands at 2.5 (leaf 1) and 7.5 (leaf 3).
    leaves, priorities = tree.sample_stratified(np.array([0.5, 0.5]))
    assert leaves.tolist() == [1, 3] and priorities.tolist() == [2.0, 4.0]
    leaves, priorities = tree.sample_stratified(np.array([]))
    assert leaves.shape == priorities.shape == (0,)


def test_a_value_at_the_total_finds_the_last_positive_leaf() -> None:
    """Values are clipped into [0, total): the total itself, and more, find the last positive leaf,
    and negative values the first one; zero-priority leaves are never returned."""
    tree = SumTree(6)
    tree.update(np.arange(6), np.array([0.0, 1.0, 0.0, 2.0, 0.0, 0.0]))
    np.testing.assert_array_equal(
        tree.find_prefix_sum([-5.0, 0.0, 0.999, 1.0, 3.0, 50.0]), [1, 1, 1, 3, 3, 3]
    )


def test_a_total_below_one_clips_values_below_the_total_into_the_leaf_that_holds_them() -> None:
    """The clip bound lies just below the total (towards 0), also when the total is below 1: a leaf
    whose priority is lost in the rounding of the total (1e-20 next to 0.3) holds no value."""
    tree = SumTree(2)
    tree.update(np.arange(2), np.array([0.3, 1e-20]))
    assert tree.total == 0.3
    np.testing.assert_array_equal(tree.find_prefix_sum([0.3, 5.0, 0.29999999999999993]), [0, 0, 0])


def test_indices_and_priorities_of_any_integer_dtype_and_byte_order_are_written_as_int64_and_float64() -> (
    None
):
    """The compiled update gets native int64 indices and float64 priorities, whatever it was given:
    unsigned or big-endian indices (e.g. read from a file), integer or big-endian priorities."""
    tree = SumTree(4)
    tree.update(np.array([3, 1], dtype=np.uint64), np.array([2, 5]))
    np.testing.assert_array_equal(tree.priorities, [0.0, 5.0, 0.0, 2.0])
    assert tree.total == 7.0
    tree.update(np.array([[0], [3]], dtype=">i8"), np.array([[1.5], [0.5]], dtype=">f8"))
    np.testing.assert_array_equal(tree.priorities, [1.5, 5.0, 0.0, 0.5])
    assert tree.total == 7.0
    message = r"^indices must lie in \[0, 4\) and priorities must be finite and >= 0, got index 2 with priority -1.0$"
    with pytest.raises(ValueError, match=message):
        tree.update(np.array([2], dtype=np.uint32), [-1])  # an integer priority reads as a float
