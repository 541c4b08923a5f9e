"""Sum tree, PrioritizedReplayBuffer and the PER algorithms' training signals."""

from __future__ import annotations

import copy
import inspect
import os
import pickle
import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sb3_contrib import QRDQN
from sb3_contrib.common.utils import quantile_huber_loss
from scipy import stats
from stable_baselines3 import DQN, SAC, TD3, HerReplayBuffer
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import load_from_zip_file, save_to_pkl
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import get_device, polyak_update, set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import PERDQN, PERQRDQN, PERSAC, PERTD3, PrioritizedReplayBuffer
from sb3_ext.common import segment_tree
from sb3_ext.common.segment_tree import SumTree
from sb3_ext.per import actor_critic
from sb3_ext.per.dqn import quantile_huber_per_sample
from sb3_ext.per.mixin import weighted_mean

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = spaces.Discrete(2)
priority = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------- sum tree
def assert_sum_tree(tree: SumTree, reference: np.ndarray) -> None:
    """The leaves hold ``reference`` (padding leaves 0) and every inner node is exactly the sum of its children."""
    np.testing.assert_array_equal(tree.priorities, reference)
    nodes, n_leaves = tree.nodes, tree.nodes.size // 2
    assert n_leaves >= tree.capacity and (n_leaves == 1 or 2 * tree.capacity > n_leaves)
    assert not nodes[n_leaves + tree.capacity :].any()
    inner = np.arange(1, n_leaves)
    np.testing.assert_array_equal(nodes[inner], nodes[2 * inner] + nodes[2 * inner + 1])
    assert tree.total == pytest.approx(reference.sum(), rel=1e-12, abs=1e-300)


def brute_force_prefix_search(p: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The leaf ``i`` with ``sum_{k<i} p_k <= v < sum_{k<=i} p_k`` for each ``v``, from a cumulative sum."""
    return np.searchsorted(np.cumsum(p), values, side="right")


# One operation on a tree: a batch update (indices taken modulo the capacity, repeats allowed,
# optionally sorted as sampled batches are) or a range update (the insertion path).
batch_update = st.tuples(
    st.just("batch"),
    st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 64)), min_size=1, max_size=40),
    st.booleans(),
)
range_update = st.tuples(st.just("range"), st.integers(0, 10**9), st.integers(1, 5), st.integers(0, 64))


@settings(max_examples=80, deadline=None)
@given(
    capacity=st.integers(1, 3000),
    operations=st.lists(st.one_of(batch_update, range_update), min_size=1, max_size=8),
    data=st.data(),
)
def test_sums_and_prefix_search_match_a_brute_force_reference(
    capacity: int, operations: list, data: st.DataObject
) -> None:
    """Integer priorities and half-integer targets keep every sum and difference exact in float64,
    so the tree must agree with the cumulative-sum reference exactly, borders and zero-priority
    leaves included."""
    tree, reference = SumTree(capacity), np.zeros(capacity)
    for operation in operations:
        if operation[0] == "batch":
            pairs = (
                sorted(operation[1], key=lambda pair: pair[0] % capacity) if operation[2] else operation[1]
            )
            indices = np.array([i % capacity for i, _ in pairs])
            tree.update(indices, np.array([float(p) for _, p in pairs]))
            for i, p in zip(indices, pairs, strict=True):  # reference semantics: the last write wins
                reference[i] = p[1]
        else:
            start = operation[1] % capacity
            count = min(operation[2], capacity - start)
            tree.update_range(start, count, float(operation[3]))
            reference[start : start + count] = operation[3]
        assert_sum_tree(tree, reference)
        if reference.sum() > 0:
            total = int(reference.sum())
            halves = data.draw(st.lists(st.integers(0, 2 * total - 1), min_size=1, max_size=32))
            values = np.array(halves) / 2.0
            np.testing.assert_array_equal(
                tree.find_prefix_sum(values), brute_force_prefix_search(reference, values)
            )
            # Every positive leaf is found at both ends of its own slice.
            positive = np.flatnonzero(reference)
            before = np.cumsum(reference)[positive] - reference[positive]
            np.testing.assert_array_equal(tree.find_prefix_sum(before), positive)
            np.testing.assert_array_equal(tree.find_prefix_sum(before + reference[positive] - 0.5), positive)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    priorities=st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e3)), min_size=1, max_size=3000).filter(
        lambda p: sum(p) > 0
    ),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=64),
)
def test_prefix_sum_search_matches_cumsum(priorities: list[float], fractions: list[float]) -> None:
    p = np.array(priorities)
    tree = SumTree(p.size)
    tree.update(np.arange(p.size), p)
    assert_sum_tree(tree, p)
    targets = np.array(fractions) * p.sum()
    found = tree.find_prefix_sum(targets)
    assert (p[found] > 0).all()
    # Leaf i covers [cumsum before i, cumsum through i); allow rounding at the borders.
    before, through = np.cumsum(p) - p, np.cumsum(p)
    slack = 1e-9 * p.sum()
    assert np.all(before[found] - slack <= targets) and np.all(targets < through[found] + slack)
    # Values outside [0, total) are clipped onto the first and the last positive leaf.
    positive = np.flatnonzero(p)
    np.testing.assert_array_equal(tree.find_prefix_sum([-1.0, p.sum(), np.inf]), positive[[0, -1, -1]])


@pytest.mark.parametrize("capacity", [1, 2, 3, 1023, 1024, 1025, 1_048_577])
def test_capacities_around_powers_of_two(capacity: int) -> None:
    """Trees of one leaf, of exact powers of two and just past them (a level of padding), up to
    21 levels: updates, range updates and searches agree with the reference."""
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    reference = rng.integers(0, 4, capacity).astype(float)
    tree.update(np.arange(capacity), reference)
    start = int(rng.integers(0, capacity))
    count = min(capacity - start, 700)
    tree.update_range(start, count, 2.0)
    reference[start : start + count] = 2.0
    indices = rng.integers(0, capacity, 500)
    values = rng.integers(0, 3, 500).astype(float)
    tree.update(indices, values)
    for i, p in zip(indices, values, strict=True):
        reference[i] = p
    tree.update([capacity - 1], [1.0])  # the last leaf, next to the padding, is positive
    reference[-1] = 1.0
    if capacity < 5000:
        assert_sum_tree(tree, reference)
    else:  # the full check of the 2M inner nodes is slow in numpy: the leaves and the total
        np.testing.assert_array_equal(tree.priorities, reference)
        assert tree.total == reference.sum()
    targets = rng.integers(0, 2 * int(reference.sum()), 4000) / 2.0
    np.testing.assert_array_equal(
        tree.find_prefix_sum(targets), brute_force_prefix_search(reference, targets)
    )
    leaves, priorities = tree.sample_stratified(rng.random(256))
    assert np.all(np.diff(leaves) >= 0) and (priorities > 0).all()
    np.testing.assert_array_equal(priorities, reference[leaves])


def test_stratified_sample_takes_one_leaf_per_slice() -> None:
    tree = SumTree(100_000)
    tree.update_range(0, 100_000, 1.0)
    tree.update_range(500, 10, 0.0)
    reference = np.ones(100_000)
    reference[500:510] = 0.0
    leaves, priorities = tree.sample_stratified(np.full(64, 0.5))
    # Slice j of 64 covers [j, j + 1) * total / 64; its midpoint falls in one unit leaf.
    targets = (np.arange(64) + 0.5) * reference.sum() / 64
    np.testing.assert_array_equal(leaves, brute_force_prefix_search(reference, targets))
    np.testing.assert_array_equal(priorities, 1.0)


def test_repeated_indices_in_one_update_keep_the_last_priority() -> None:
    """The last write of a repeated index wins, in sorted and unsorted batches (the fuzz tests
    above only meet repeats by chance)."""
    tree = SumTree(8)
    tree.update(np.array([2, 2, 5, 5, 5]), np.array([1.0, 3.0, 4.0, 6.0, 0.5]))  # sorted
    tree.update(np.array([7, 1, 7, 1]), np.array([2.0, 8.0, 9.0, 0.25]))  # unsorted
    tree.update(np.array([[3, 3], [4, 3]]), np.array([[5.0, 2.5], [2.5, 1.5]]))  # 2-D, row-major order
    assert_sum_tree(tree, np.array([0.0, 0.25, 3.0, 1.5, 2.5, 0.5, 0.0, 9.0]))
    # A prioritized batch that drew one transition twice writes its last TD error.
    buffer = filled_buffer(4, alpha=1.0, eps=0.5)
    buffer.update_priorities(np.array([1, 1, 3]), np.array([2.0, -4.0, 1.0]))
    np.testing.assert_allclose(buffer.tree.priorities, [1.0, 4.5, 1.0, 1.5])


@pytest.mark.parametrize("capacity", [50, 3_000, 200_000])
def test_writing_back_a_sample_matches_a_flat_reference(capacity: int) -> None:
    """Priorities written back for a stratified sample (sorted, with repeated leaves and shared
    ancestors in small trees) leave every inner node the sum of its children."""
    rng = np.random.default_rng(capacity)
    tree, reference = SumTree(capacity), rng.random(capacity)
    tree.update(np.arange(capacity), reference)
    for step in range(12):
        leaves, priorities = tree.sample_stratified(rng.random(64))
        np.testing.assert_array_equal(priorities, reference[leaves])
        new = rng.random(leaves.size)
        if step % 3 == 1:  # an insertion between sample and write-back
            tree.update_range(int(leaves[0]), 1, 7.0)
            reference[leaves[0]] = 7.0
        tree.update(leaves, new)
        for i, p in zip(leaves, new, strict=True):
            reference[i] = p
        if capacity < 5000:
            assert_sum_tree(tree, reference)
        else:
            np.testing.assert_array_equal(tree.priorities, reference)
            assert tree.total == pytest.approx(reference.sum(), rel=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda tree: SumTree(0), "capacity"),
        (lambda tree: SumTree(2.5), "capacity"),
        (lambda tree: tree.update([4], [1.0]), "indices"),
        (lambda tree: tree.update([-1], [1.0]), "indices"),
        (lambda tree: tree.update([0.5], [1.0]), "indices must be integers"),
        (lambda tree: tree.update([0, 1], [1.0, -1.0]), "priorities"),
        (lambda tree: tree.update([0, 1], [1.0, np.nan]), "priorities"),
        (lambda tree: tree.update([0, 1], [1.0, np.inf]), "priorities"),
        (lambda tree: tree.update_range(3, 2, 1.0), "leaves"),
        (lambda tree: tree.update_range(0, 0, 1.0), "leaves"),
        (lambda tree: tree.update_range(0, 1, np.nan), "^priority must be finite and >= 0, got nan$"),
        (lambda tree: tree.update_range(0, 1, -1.0), "^priority must be finite and >= 0, got -1.0$"),
        (lambda tree: tree.update_range(-1, 2, 1.0), r"^leaves \[-1, 1\) must lie in \[0, 4\)$"),
        (lambda tree: tree.find_prefix_sum([0.5]), "^cannot search a sum tree whose total priority is 0$"),
        (lambda tree: tree.find_prefix_sum([np.nan]), "^values must not be NaN$"),
        (
            lambda tree: tree.sample_stratified(np.full(3, 0.5)),
            "^cannot search a sum tree whose total priority is 0$",
        ),
    ],
)
def test_tree_rejects_bad_input_and_stays_unchanged(call, message: str) -> None:
    tree = SumTree(4)
    with pytest.raises(ValueError, match=message):
        call(tree)
    assert_sum_tree(tree, np.zeros(4))  # a rejected batch writes nothing, not even its valid pairs


@pytest.mark.parametrize("bad", [5, -1, [0, 5], [-1, 2], [0.5], [1.0]])
def test_tree_reads_only_integer_leaf_indices(bad) -> None:
    """A leaf index outside [0, capacity) would read a padding leaf or an inner node: rejected."""
    tree = SumTree(5)  # 8 leaves, 3 of them padding
    tree.update(np.arange(5), np.arange(1.0, 6.0))
    assert tree[3] == 4.0
    np.testing.assert_array_equal(tree[np.array([[4, 0], [2, 2]])], [[5.0, 1.0], [3.0, 3.0]])
    with pytest.raises(ValueError, match=re.escape("indices must be integers in [0, 5), got")):
        tree[np.asarray(bad)]


def test_prefix_search_keeps_the_shape_of_its_values_and_reads_any_real_dtype() -> None:
    tree = SumTree(5)
    tree.update(np.arange(5), np.arange(1.0, 6.0))  # leaf i covers [cumsum before i, cumsum through i)
    values = np.array([[0.5, 3.5, 14.5], [1.0, 6.0, 9.5]])  # exact in float16
    expected = np.array([[0, 2, 4], [1, 3, 3]])
    found = tree.find_prefix_sum(values)
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, expected)
    for dtype in (np.float16, np.float32, np.int64, np.uint8):
        np.testing.assert_array_equal(
            tree.find_prefix_sum(np.floor(values).astype(dtype)), [[0, 2, 4], [1, 3, 3]]
        )
        np.testing.assert_array_equal(tree.find_prefix_sum(values[0].astype(dtype)), [0, 2, 4])
    assert tree.find_prefix_sum(np.float16(6.5)).shape == ()
    assert tree.find_prefix_sum(6.5) == 3
    assert tree.find_prefix_sum([[[0.0]]]).shape == (1, 1, 1)


def test_tree_pickles_and_its_compiled_code_is_cached_on_disk() -> None:
    tree = SumTree(10)
    tree.update(np.arange(10), np.arange(10.0))
    restored = pickle.loads(pickle.dumps(tree))
    assert_sum_tree(restored, np.arange(10.0))
    restored.update([9], [0.0])
    assert restored.find_prefix_sum([44.5])[0] == 8 and tree.priorities[9] == 9.0
    # cache=True: the first use on a machine compiles, later processes load the machine code.
    for function in (segment_tree._update, segment_tree._update_range, segment_tree._find_prefix_sum):
        stats = function.stats
        assert sum(stats.cache_hits.values()) + sum(stats.cache_misses.values()) > 0
        assert any(
            name.startswith(f"segment_tree.{function.__name__}-") for name in os.listdir(stats.cache_path)
        )


# ----------------------------------------------------------------------------- buffer
def filled_buffer(n: int, n_envs: int = 1, **kwargs) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(n, OBS, ACT, device="cpu", n_envs=n_envs, **kwargs)
    for row in range(n // n_envs):
        # Each observation encodes its own flat index row * n_envs + env.
        obs = (row * n_envs + np.arange(n_envs, dtype=np.float32))[:, None].repeat(3, axis=1)
        buffer.add(obs, obs + 0.5, np.zeros((n_envs, 1)), np.zeros(n_envs), np.zeros(n_envs), [{}] * n_envs)
    return buffer


@settings(max_examples=8, deadline=None)
@given(
    td_errors=st.lists(st.floats(0.0, 5.0), min_size=12, max_size=12),
    alpha=st.sampled_from([0.0, 0.6, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_sample_frequencies_follow_priorities_chi_square(
    td_errors: list[float], alpha: float, seed: int
) -> None:
    buffer = filled_buffer(12, alpha=alpha)
    buffer.update_priorities(np.arange(12), np.array(td_errors))
    expected = (np.abs(td_errors) + buffer.eps) ** alpha
    expected /= expected.sum()
    set_random_seed(seed)
    counts = np.zeros(12)
    for _ in range(400):
        np.add.at(counts, buffer.sample(64).indices, 1)
    # Merge the rarest indices so every cell expects >= 5 draws, then a 0.1% chi-square test.
    order = np.argsort(expected)
    total = counts.sum()
    cell_expected, cell_counts, acc_e, acc_c = [], [], 0.0, 0.0
    for i in order:
        acc_e, acc_c = acc_e + expected[i] * total, acc_c + counts[i]
        if acc_e >= 5:
            cell_expected.append(acc_e)
            cell_counts.append(acc_c)
            acc_e = acc_c = 0.0
    cell_expected[-1] += acc_e
    cell_counts[-1] += acc_c
    if len(cell_expected) > 1:
        assert stats.chisquare(cell_counts, cell_expected).pvalue > 1e-3


@settings(max_examples=25, deadline=None)
@given(
    td_errors=st.lists(st.floats(0.0, 100.0), min_size=30, max_size=30),
    progress=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_importance_weights_formula(td_errors: list[float], progress: float, seed: int) -> None:
    buffer = filled_buffer(30, alpha=0.6, beta=0.4)
    buffer.update_priorities(np.arange(30), np.array(td_errors))
    buffer.set_progress(progress)
    set_random_seed(seed)
    batch = buffer.sample(16)
    probabilities = (np.abs(td_errors) + buffer.eps) ** 0.6
    probabilities /= probabilities.sum()
    beta = 0.4 + 0.6 * progress
    w = (30 * probabilities[batch.indices]) ** -beta
    np.testing.assert_allclose(batch.weights.numpy().ravel(), w / w.max(), rtol=1e-5)
    assert {t.dtype for t in (batch.observations, batch.rewards, batch.dones, batch.weights)} == {th.float32}
    # The sampled data are the transitions at those indices.
    np.testing.assert_array_equal(batch.observations.numpy()[:, 0], batch.indices)


def test_alpha_applied_once_and_new_transitions_get_max_priority() -> None:
    buffer = filled_buffer(8, alpha=0.5, eps=0.01)
    np.testing.assert_array_equal(buffer.tree.priorities, np.ones(8))
    buffer.update_priorities(np.array([1, 2]), th.tensor([3.0, -0.5]))
    assert buffer.tree[np.array([1, 2])] == pytest.approx([3.01**0.5, 0.51**0.5])
    assert buffer.max_priority == pytest.approx(3.01)
    buffer.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    assert buffer.tree[0] == pytest.approx(3.01**0.5)  # row 0 overwritten (buffer full)


def test_n_envs_indices_and_timeouts() -> None:
    buffer = PrioritizedReplayBuffer(10, OBS, ACT, device="cpu", n_envs=2)
    for row in range(5):
        obs = np.array([[2 * row] * 3, [2 * row + 1] * 3], dtype=np.float32)
        infos = [{"TimeLimit.truncated": True}, {}]
        buffer.add(obs, obs, np.zeros((2, 1)), np.zeros(2), np.ones(2), infos)
    batch = buffer.sample(200)
    np.testing.assert_array_equal(batch.observations.numpy()[:, 0], batch.indices)
    # Env 0 transitions were truncated by a time limit: not terminal. Env 1 ones are terminal.
    np.testing.assert_array_equal(batch.dones.numpy().ravel(), batch.indices % 2)


def test_optimize_memory_usage_skips_the_broken_row() -> None:
    buffer = PrioritizedReplayBuffer(
        6, OBS, ACT, device="cpu", optimize_memory_usage=True, handle_timeout_termination=False
    )
    for step in range(8):  # wraps around: row 2 is the next to write, its observation slot is stale
        obs = np.full((1, 3), step, dtype=np.float32)
        buffer.add(obs, obs + 1, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    assert buffer.tree[2] == 0.0 and (np.delete(buffer.tree.priorities, 2) > 0).all()
    batch = buffer.sample(300)
    assert 2 not in batch.indices
    np.testing.assert_array_equal(batch.next_observations.numpy(), batch.observations.numpy() + 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=-0.1), r"^alpha must be a finite float >= 0, got -0.1$"),
        (dict(beta=1.5), r"^beta must lie in \[0, 1\], got 1.5$"),
        (dict(final_beta=-1.0), r"^final_beta must lie in \[0, 1\], got -1.0$"),
        (dict(eps=0.0), r"^eps must be a finite number > 0, got 0.0$"),
    ],
)
def test_buffer_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrioritizedReplayBuffer(10, OBS, ACT, **kwargs)


def test_buffer_rejects_dict_observation_spaces() -> None:
    with pytest.raises(
        ValueError,
        match="^observation_space: PrioritizedReplayBuffer does not support Dict observation spaces$",
    ):
        PrioritizedReplayBuffer(10, spaces.Dict({"obs": OBS}), ACT)


def test_buffer_rejects_bad_td_errors_and_empty_sampling() -> None:
    buffer = PrioritizedReplayBuffer(10, OBS, ACT, device="cpu")
    with pytest.raises(ValueError, match="^cannot sample from an empty PrioritizedReplayBuffer$"):
        buffer.sample(4)
    buffer = filled_buffer(10)
    with pytest.raises(ValueError, match="^td_errors must be finite$"):
        buffer.update_priorities(np.arange(2), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="one value per index"):
        buffer.update_priorities(np.arange(3), np.ones(2))


def test_buffer_defaults() -> None:
    """The documented defaults: Schaul et al.'s alpha 0.6 and beta 0.4 annealed to 1, eps 1e-6, and
    SB3's ReplayBuffer defaults (one env, time-outs handled, no memory optimization)."""
    buffer = PrioritizedReplayBuffer(10, OBS, ACT)
    assert (buffer.alpha, buffer.initial_beta, buffer.final_beta, buffer.eps) == (0.6, 0.4, 1.0, 1e-6)
    assert (buffer.progress, buffer.beta, buffer.max_priority) == (0.0, 0.4, 1.0)
    assert (buffer.n_envs, buffer.handle_timeout_termination, buffer.optimize_memory_usage) == (
        1,
        True,
        False,
    )
    assert buffer.device == get_device("auto") and buffer.tree.capacity == 10 and buffer.tree.total == 0.0
    with pytest.raises(ValueError, match="^batch_size must be >= 1, got 0$"):
        filled_buffer(4).sample(0)


def test_beta_anneals_with_progress() -> None:
    buffer = PrioritizedReplayBuffer(10, OBS, ACT, beta=0.4, final_beta=1.0)
    assert buffer.beta == pytest.approx(0.4)
    buffer.set_progress(0.5)
    assert buffer.beta == pytest.approx(0.7)
    buffer.set_progress(3.0)
    assert buffer.beta == pytest.approx(1.0)
    buffer.set_progress(-2.0)
    assert buffer.progress == 0.0 and buffer.beta == pytest.approx(0.4)


def test_reset_empties_the_buffer_and_forgets_the_priorities() -> None:
    buffer = filled_buffer(6, n_envs=2, alpha=0.5)  # 3 rows of 2 envs
    buffer.update_priorities(np.array([1, 4]), np.array([8.0, 2.0]))
    assert buffer.max_priority == pytest.approx(8.0 + buffer.eps)
    buffer.reset()
    assert buffer.size() == 0 and buffer.max_priority == 1.0
    assert buffer.tree.capacity == 6 and buffer.tree.total == 0.0
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2)
    # The next transitions enter at priority 1 again, not at the forgotten maximum.
    obs = np.zeros((2, 3), dtype=np.float32)
    buffer.add(obs, obs, np.zeros((2, 1)), np.zeros(2), np.zeros(2), [{}, {}])
    np.testing.assert_array_equal(buffer.tree.priorities, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    assert set(buffer.sample(20).indices.tolist()) == {0, 1}


# ----------------------------------------------------------------------------- algorithms
def test_weighted_losses_reduce_to_the_unweighted_ones() -> None:
    gen = th.Generator().manual_seed(0)
    current, target = th.randn(16, 1, generator=gen), th.randn(16, 1, generator=gen)
    ones = th.ones(16, 1)
    huber = F.smooth_l1_loss(current, target, reduction="none")
    assert weighted_mean(huber, ones).item() == pytest.approx(
        F.smooth_l1_loss(current, target).item(), rel=1e-6
    )
    weights = th.rand(16, 1, generator=gen)
    assert weighted_mean(huber, weights).item() == pytest.approx((weights * huber).mean().item(), rel=1e-6)
    quantiles, target_quantiles = th.randn(16, 8, generator=gen), th.randn(16, 8, generator=gen)
    per_sample = quantile_huber_per_sample(quantiles, target_quantiles)
    reference = quantile_huber_loss(quantiles, target_quantiles, sum_over_quantiles=True)
    assert per_sample.mean().item() == pytest.approx(reference.item(), rel=1e-5)


def test_training_writes_priorities_and_anneals_beta() -> None:
    env = gym.make("AdvRL/GridWorld-v0", size=4)
    model = PERDQN(
        "MlpPolicy",
        env,
        learning_starts=50,
        buffer_size=1000,
        batch_size=16,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
        device="cpu",
    )
    buffer = model.replay_buffer
    written: dict[int, float] = {}  # index -> |last TD error written|
    largest = 0.0
    update_priorities = buffer.update_priorities

    def record(indices, td_errors):
        nonlocal largest
        errors = np.abs(td_errors.detach().numpy().reshape(-1))
        written.update(zip(indices.tolist(), errors.tolist(), strict=True))  # a repeated index keeps its last
        largest = max(largest, float(errors.max()))
        update_priorities(indices, td_errors)

    buffer.update_priorities = record
    model.learn(400)
    # Most of the 400 transitions were replayed, and each carries (|last TD error| + eps)^alpha.
    assert len(written) > 300
    indices = np.array(sorted(written))
    expected = (np.array([written[i] for i in indices]) + buffer.eps) ** buffer.alpha
    np.testing.assert_allclose(buffer.tree.priorities[indices], expected, rtol=1e-6)
    assert buffer.max_priority == pytest.approx(max(1.0, largest + buffer.eps))
    # The last update came after the last of the 400 steps: beta has reached final_beta.
    assert buffer.beta == pytest.approx(1.0)


@pytest.mark.parametrize(
    "algo, env_id",
    [
        (PERDQN, "AdvRL/Pendulum-v0"),
        (PERQRDQN, "AdvRL/Pendulum-v0"),
        (PERSAC, "AdvRL/GridWorld-v0"),
        (PERTD3, "AdvRL/GridWorld-v0"),
    ],
)
def test_wrong_action_space_is_a_value_error(algo, env_id: str) -> None:
    with pytest.raises(ValueError, match="action spaces"):
        algo("MlpPolicy", gym.make(env_id))


def test_rejects_uniform_buffer_and_n_steps() -> None:
    env = gym.make("AdvRL/GridWorld-v0")
    with pytest.raises(ValueError, match="replay_buffer_class"):
        PERDQN("MlpPolicy", env, replay_buffer_class=ReplayBuffer)
    with pytest.raises(ValueError, match="n_steps"):
        PERDQN("MlpPolicy", env, n_steps=3)
    # Hindsight relabelling draws goals at sampling time: no per-transition priority fits it.
    with pytest.raises(ValueError, match="replay_buffer_class .*HerReplayBuffer"):
        PERDQN("MultiInputPolicy", gym.make("AdvRL/GoalGridWorld-v0"), replay_buffer_class=HerReplayBuffer)


def test_save_load_keeps_priorities(tmp_path) -> None:
    env = gym.make("AdvRL/Pendulum-v0")
    kwargs = dict(
        learning_starts=50, buffer_size=500, batch_size=16, policy_kwargs=dict(net_arch=[16]), device="cpu"
    )
    model = PERSAC(
        "MlpPolicy", env, seed=0, replay_buffer_kwargs=dict(alpha=0.7, beta=0.5, eps=1e-3), **kwargs
    )
    model.learn(200)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")

    loaded = PERSAC.load(tmp_path / "model.zip", env=env, device="cpu")
    assert loaded.replay_buffer_kwargs == dict(alpha=0.7, beta=0.5, eps=1e-3)
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    original, restored = model.replay_buffer, loaded.replay_buffer
    assert isinstance(restored, PrioritizedReplayBuffer)
    np.testing.assert_array_equal(original.tree.priorities, restored.tree.priorities)
    assert restored.max_priority == original.max_priority and restored.alpha == 0.7
    assert (
        len(np.unique(restored.tree.priorities[:200])) > 20
    )  # real TD-error priorities, not the initial ones
    set_random_seed(3)
    first = original.sample(32).indices
    set_random_seed(3)
    np.testing.assert_array_equal(first, restored.sample(32).indices)
    loaded.learn(100, reset_num_timesteps=False)  # keeps training on the restored buffer

    uniform = ReplayBuffer(100, env.observation_space, env.action_space)
    save_to_pkl(tmp_path / "uniform.pkl", uniform)
    with pytest.raises(
        ValueError, match="PERSAC needs a PrioritizedReplayBuffer, the file holds a ReplayBuffer$"
    ):
        loaded.load_replay_buffer(tmp_path / "uniform.pkl")
    assert loaded.replay_buffer is restored  # the rejected file replaced nothing
    # The importance weights of the last train() are transient: not saved with the model.
    data, _, _ = load_from_zip_file(tmp_path / "model.zip", device="cpu")
    assert "_per_weights" not in data and "replay_buffer_kwargs" in data


# ----------------------------------------------------------------------------- exact updates
# One gradient step of each PER algorithm on a fixed batch holding terminal and non-terminal
# transitions, against the TD target written out here: r + gamma (1 - done) * (bootstrap).
N_STORED, BATCH = 48, 32


def per_model(algo, env_id: str, **kwargs):
    model = algo(
        "MlpPolicy",
        gym.make(env_id),
        learning_starts=0,
        buffer_size=N_STORED,
        batch_size=BATCH,
        gamma=0.9,
        seed=0,
        device="cpu",
        replay_buffer_kwargs=dict(alpha=0.7, eps=1e-3),
        **kwargs,
    )
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    space, buffer = model.observation_space, model.replay_buffer
    for i in range(N_STORED):
        obs, next_obs = (rng.uniform(-1, 1, (1, *space.shape)).astype(np.float32) for _ in range(2))
        if isinstance(model.action_space, spaces.Discrete):
            action = rng.integers(model.action_space.n, size=(1, 1))
        else:  # Box actions are stored scaled to [-1, 1], as SB3 does
            action = rng.uniform(-1, 1, (1, *model.action_space.shape)).astype(np.float32)
        buffer.add(obs, next_obs, action, rng.normal(size=1), np.array([i % 3 == 0]), [{}])
    # Distinct priorities, so that the importance weights differ from 1.
    buffer.update_priorities(np.arange(N_STORED), rng.uniform(0.1, 3.0, N_STORED))
    return model


def batch_train_will_draw(model, seed: int = 1):
    """The batch the next ``train(1, BATCH)`` samples after ``np.random.seed(seed)``; checks its mix."""
    np.random.seed(seed)  # noqa: NPY002  (the buffers sample with numpy's global generator, like SB3's)
    batch = model.replay_buffer.sample(BATCH)
    assert 0 < batch.dones.sum() < BATCH, "the batch must hold terminal and non-terminal transitions"
    assert batch.weights.min() < 0.9
    np.random.seed(seed)  # noqa: NPY002
    return batch


def huber(x: th.Tensor) -> th.Tensor:
    return th.where(x.abs() < 1.0, 0.5 * x**2, x.abs() - 0.5)


def assert_priorities(model, batch, td_errors: th.Tensor) -> None:
    """The stored priorities are (|delta| + eps)^alpha, alpha applied once (a transition drawn twice
    keeps its last delta: they differ where the target samples actions)."""
    buffer = model.replay_buffer
    last = dict(zip(batch.indices.tolist(), td_errors.abs().numpy().reshape(-1).tolist(), strict=True))
    indices = np.array(list(last))
    expected = (np.array(list(last.values())) + buffer.eps) ** buffer.alpha
    np.testing.assert_allclose(buffer.tree[indices], expected, rtol=1e-5)


def test_perdqn_update_is_the_weighted_huber_td_step() -> None:
    model = per_model(PERDQN, "AdvRL/GridWorld-v0", policy_kwargs=dict(net_arch=[16]))
    batch = batch_train_will_draw(model)
    with th.no_grad():
        q = model.q_net(batch.observations).gather(1, batch.actions.long())
        next_max = model.q_net_target(batch.next_observations).max(dim=1, keepdim=True).values
        delta = batch.rewards + 0.9 * (1.0 - batch.dones) * next_max - q
    model.train(gradient_steps=1, batch_size=BATCH)
    loss = (batch.weights * huber(delta)).mean()
    assert model.logger.name_to_value["train/loss"] == pytest.approx(float(loss), rel=1e-5)
    assert_priorities(model, batch, delta)


def test_perqrdqn_update_is_the_weighted_quantile_huber_step() -> None:
    model = per_model(PERQRDQN, "AdvRL/GridWorld-v0", policy_kwargs=dict(net_arch=[16], n_quantiles=5))
    batch = batch_train_will_draw(model)
    rows = th.arange(BATCH)
    with th.no_grad():
        theta = model.quantile_net(batch.observations)[rows, :, batch.actions.long().reshape(-1)]  # (B, N)
        next_theta = model.quantile_net_target(batch.next_observations)  # (B, N, A)
        greedy = next_theta.mean(dim=1).argmax(dim=1)
        target = batch.rewards + 0.9 * (1.0 - batch.dones) * next_theta[rows, :, greedy]  # T theta_j
        # Dabney et al. (2018), eq. 10: rho_tau(u) = |tau_i - 1{u < 0}| Huber(u), u_ij = T theta_j - theta_i,
        # summed over the quantiles i and averaged over the targets j.
        u = target[:, None, :] - theta[:, :, None]
        tau = (th.arange(5, dtype=th.float32) + 0.5) / 5
        rho = (tau[None, :, None] - (u < 0).float()).abs() * huber(u)
        per_sample = rho.mean(dim=2).sum(dim=1)
    model.train(gradient_steps=1, batch_size=BATCH)
    loss = (batch.weights.reshape(-1) * per_sample).mean()
    assert model.logger.name_to_value["train/loss"] == pytest.approx(float(loss), rel=1e-5)
    assert_priorities(model, batch, target.mean(dim=1) - theta.mean(dim=1))


def critic_values(critic, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
    return th.cat(critic(observations, actions), dim=1)  # (B, n_critics)


def test_persac_update_is_the_weighted_soft_td_step() -> None:
    model = per_model(PERSAC, "AdvRL/Pendulum-v0", ent_coef=0.2, policy_kwargs=dict(net_arch=[16]))
    batch = batch_train_will_draw(model)
    with th.no_grad():
        # train() draws the current policy's actions first, then the next actions: same seed, same draws.
        th.manual_seed(5)
        model.actor.action_log_prob(batch.observations)
        next_actions, next_log_prob = model.actor.action_log_prob(batch.next_observations)
        soft_value = (
            critic_values(model.critic_target, batch.next_observations, next_actions)
            .min(dim=1, keepdim=True)
            .values
        )
        soft_value = soft_value - 0.2 * next_log_prob.reshape(-1, 1)
        target = batch.rewards + 0.9 * (1.0 - batch.dones) * soft_value
        delta = target - critic_values(model.critic, batch.observations, batch.actions)  # (B, 2)
    th.manual_seed(5)
    model.train(gradient_steps=1, batch_size=BATCH)
    loss = 0.5 * sum((batch.weights.reshape(-1) * delta[:, k] ** 2).mean() for k in range(2))
    assert model.logger.name_to_value["train/critic_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert_priorities(model, batch, delta.abs().mean(dim=1))


def test_pertd3_update_is_the_weighted_clipped_double_q_step() -> None:
    # Wide smoothing noise, so that both the noise clip and the [-1, 1] clip of the target action act.
    model = per_model(
        PERTD3,
        "AdvRL/Pendulum-v0",
        target_policy_noise=1.0,
        target_noise_clip=1.5,
        policy_kwargs=dict(net_arch=[16]),
    )
    batch = batch_train_will_draw(model)
    with th.no_grad():
        th.manual_seed(5)  # target policy smoothing noise, the first draw of train()
        noise = batch.actions.clone().normal_(0.0, 1.0).clamp(-1.5, 1.5)
        smoothed = model.actor_target(batch.next_observations) + noise
        assert (noise.abs() == 1.5).any() and (smoothed > 1.0).any() and (smoothed < -1.0).any()
        assert (smoothed.abs() < 2.0).all()
        next_actions = smoothed.clamp(-1.0, 1.0)
        bootstrap = (
            critic_values(model.critic_target, batch.next_observations, next_actions)
            .min(dim=1, keepdim=True)
            .values
        )
        target = batch.rewards + 0.9 * (1.0 - batch.dones) * bootstrap
        delta = target - critic_values(model.critic, batch.observations, batch.actions)
    th.manual_seed(5)
    model.train(gradient_steps=1, batch_size=BATCH)
    loss = sum((batch.weights.reshape(-1) * delta[:, k] ** 2).mean() for k in range(2))
    assert model.logger.name_to_value["train/critic_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert_priorities(model, batch, delta.abs().mean(dim=1))


@pytest.mark.parametrize(
    "algo, base, env_id",
    [
        (PERDQN, DQN, "AdvRL/GridWorld-v0"),
        (PERQRDQN, QRDQN, "AdvRL/GridWorld-v0"),
        (PERSAC, SAC, "AdvRL/Pendulum-v0"),
        (PERTD3, TD3, "AdvRL/Pendulum-v0"),
    ],
)
def test_train_follows_the_conventions_of_the_sb3_algorithm(algo, base, env_id: str) -> None:
    """Like the SB3 ``train()`` it replaces: switches the networks to training mode, samples SB3's
    default batch size when called without one, logs the update count (not to TensorBoard) and
    sets every optimizer (SAC's entropy coefficient's included) to the scheduled learning rate."""
    model = per_model(
        algo, env_id, learning_rate=lambda progress: 1e-3 * progress, policy_kwargs=dict(net_arch=[16])
    )
    model._current_progress_remaining = 0.25
    sizes = []
    sample = model.replay_buffer.sample

    def recording_sample(batch_size, env=None):
        sizes.append(batch_size)
        return sample(batch_size, env)

    model.replay_buffer.sample = recording_sample
    model.train(gradient_steps=2)
    model.policy.set_training_mode(False)
    model.train(gradient_steps=3)
    assert sizes == [inspect.signature(base.train).parameters["batch_size"].default] * 5
    networks = [
        getattr(model, name) for name in ("q_net", "quantile_net", "actor", "critic") if hasattr(model, name)
    ]
    assert model.policy.training and networks and all(network.training for network in networks)
    assert model.logger.name_to_value["train/n_updates"] == 5  # counted over both calls
    assert model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)
    optimizers = [getattr(network, "optimizer", None) for network in (model.policy, *networks)]
    optimizers = [o for o in [*optimizers, getattr(model, "ent_coef_optimizer", None)] if o is not None]
    assert len(optimizers) == {PERDQN: 1, PERQRDQN: 1, PERSAC: 3, PERTD3: 2}[algo]
    assert all(group["lr"] == pytest.approx(2.5e-4) for o in optimizers for group in o.param_groups)


def test_pertd3_delays_the_actor_step() -> None:
    """With ``policy_delay=2`` the first gradient step leaves the actor alone; the second one descends
    ``-Q1(s, pi(s))`` (the critic already updated by that step) and logs it."""
    model = per_model(PERTD3, "AdvRL/Pendulum-v0", policy_delay=2, policy_kwargs=dict(net_arch=[16]))
    actor_before = copy.deepcopy(model.actor)
    targets_before = [copy.deepcopy(model.critic_target), copy.deepcopy(model.actor_target)]
    model.train(gradient_steps=1, batch_size=BATCH)
    assert model.logger.name_to_value["train/n_updates"] == 1
    assert "train/actor_loss" not in model.logger.name_to_value
    for before, after in zip(actor_before.parameters(), model.actor.parameters(), strict=True):
        assert th.equal(before, after)
    for before, after in zip(targets_before, (model.critic_target, model.actor_target), strict=True):
        assert all(th.equal(p, q) for p, q in zip(before.parameters(), after.parameters(), strict=True))

    batch = batch_train_will_draw(model, seed=2)
    model.train(gradient_steps=1, batch_size=BATCH)
    with th.no_grad():
        actor_loss = -model.critic.q1_forward(batch.observations, actor_before(batch.observations)).mean()
    assert model.logger.name_to_value["train/n_updates"] == 2
    assert model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)
    assert model.logger.name_to_value["train/actor_loss"] == pytest.approx(float(actor_loss), rel=1e-5)
    assert any(
        not th.equal(before, after)
        for before, after in zip(actor_before.parameters(), model.actor.parameters(), strict=True)
    )
    # The delayed step also moves both targets by tau = 0.005 towards the updated networks.
    for before, online, after in zip(
        targets_before, (model.critic, model.actor), (model.critic_target, model.actor_target), strict=True
    ):
        for p_before, p_online, p_after in zip(
            before.parameters(), online.parameters(), after.parameters(), strict=True
        ):
            th.testing.assert_close(
                p_after, 0.005 * p_online.detach() + 0.995 * p_before, rtol=1e-6, atol=1e-7
            )


class BatchNormExtractor(BaseFeaturesExtractor):
    """Batch-normalized observations: networks with running statistics, which SB3 copies to the targets."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(np.prod(observation_space.shape)))
        self.norm = th.nn.BatchNorm1d(self.features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.norm(observations.flatten(1))


@pytest.mark.parametrize("algo", [PERSAC, PERTD3])
def test_batch_norm_statistics_are_copied_to_the_targets(algo) -> None:
    """The target networks (always in eval mode) take the online networks' running statistics as
    they are, as SB3's SAC and TD3 do (``polyak_update(..., 1.0)``)."""
    kwargs = dict(policy_delay=1) if algo is PERTD3 else {}
    model = per_model(
        algo,
        "AdvRL/Pendulum-v0",
        policy_kwargs=dict(net_arch=[16], features_extractor_class=BatchNormExtractor),
        **kwargs,
    )
    pairs = [(model.critic, model.critic_target)]
    if algo is PERTD3:
        pairs.append((model.actor, model.actor_target))
    model.train(gradient_steps=2, batch_size=BATCH)
    for online, target in pairs:
        online_norm, target_norm = online.features_extractor.norm, target.features_extractor.norm
        assert not target_norm.training
        assert not th.allclose(online_norm.running_mean, th.zeros(3))  # the statistics have moved
        assert th.equal(target_norm.running_mean, online_norm.running_mean)
        assert th.equal(target_norm.running_var, online_norm.running_var)


def test_quantile_huber_loss_keeps_the_dtype_and_device_of_the_quantiles() -> None:
    """The quantile levels tau_i = (i + 1/2) / N are made in the quantiles' dtype and on their device:
    float64 quantiles get a float64 loss without float32 rounding of the levels."""
    gen = th.Generator().manual_seed(3)
    theta = th.randn(4, 5, generator=gen, dtype=th.float64)
    target = th.randn(4, 7, generator=gen, dtype=th.float64)
    u = target[:, None, :] - theta[:, :, None]
    tau = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    rho = np.abs(tau[None, :, None] - (u.numpy() < 0)) * huber(u).numpy()
    loss = quantile_huber_per_sample(theta, target)
    assert loss.dtype == th.float64
    np.testing.assert_allclose(loss.numpy(), rho.mean(axis=2).sum(axis=1), rtol=1e-13)
    on_meta = quantile_huber_per_sample(theta.to("meta"), target.to("meta"))
    assert on_meta.device.type == "meta" and on_meta.shape == (4,)


def test_persac_update_with_a_learned_entropy_coefficient() -> None:
    """One PERSAC step with ``ent_coef="auto_0.5"``: the critic target and the actor loss use the
    coefficient before its own step, whose loss is ``-log(alpha) (log pi(a|s) + target_entropy)``;
    the target critic moves by ``tau`` towards the updated critic."""
    model = per_model(PERSAC, "AdvRL/Pendulum-v0", ent_coef="auto_0.5", policy_kwargs=dict(net_arch=[16]))
    assert model.target_entropy == -1.0
    batch = batch_train_will_draw(model)
    target_before = [p.clone() for p in model.critic_target.parameters()]
    with th.no_grad():
        th.manual_seed(5)  # train() draws the current policy's actions, then the next actions
        actions_pi, log_prob = model.actor.action_log_prob(batch.observations)
        next_actions, next_log_prob = model.actor.action_log_prob(batch.next_observations)
        soft_value = (
            critic_values(model.critic_target, batch.next_observations, next_actions).min(dim=1).values
        )
        target = batch.rewards.reshape(-1) + 0.9 * (1.0 - batch.dones.reshape(-1)) * (
            soft_value - 0.5 * next_log_prob
        )
        delta = target[:, None] - critic_values(model.critic, batch.observations, batch.actions)
    th.manual_seed(5)
    model.train(gradient_steps=1, batch_size=BATCH)
    logged = model.logger.name_to_value
    assert logged["train/ent_coef"] == pytest.approx(0.5, rel=1e-6)
    ent_coef_loss = -(np.log(0.5) * (log_prob - 1.0)).mean()
    assert logged["train/ent_coef_loss"] == pytest.approx(float(ent_coef_loss), rel=1e-5)
    critic_loss = 0.5 * sum((batch.weights.reshape(-1) * delta[:, k] ** 2).mean() for k in range(2))
    assert logged["train/critic_loss"] == pytest.approx(float(critic_loss), rel=1e-5)
    assert_priorities(model, batch, delta.abs().mean(dim=1))
    with th.no_grad():
        min_q_pi = critic_values(model.critic, batch.observations, actions_pi).min(dim=1).values
        actor_loss = (0.5 * log_prob - min_q_pi).mean()
    assert logged["train/actor_loss"] == pytest.approx(float(actor_loss), rel=1e-5)
    assert model.log_ent_coef.item() < np.log(
        0.5
    )  # alpha moves down: the policy's entropy is above the target
    assert float(-(log_prob.mean())) > -1.0
    for before, critic, after in zip(
        target_before, model.critic.parameters(), model.critic_target.parameters(), strict=True
    ):
        th.testing.assert_close(after, 0.005 * critic.detach() + 0.995 * before, rtol=1e-6, atol=1e-7)


def test_persac_updates_the_target_critic_every_target_update_interval_steps(monkeypatch) -> None:
    """With ``target_update_interval=2``, three gradient steps move the target critic after the
    first and the third (steps 0 and 2), by ``tau``; running statistics (none here) are copied."""
    model = per_model(
        PERSAC, "AdvRL/Pendulum-v0", ent_coef=0.2, target_update_interval=2, policy_kwargs=dict(net_arch=[16])
    )
    calls = []

    def recording_polyak_update(params, target_params, tau) -> None:
        params, target_params = list(params), list(target_params)
        calls.append((len(params), len(target_params), tau))
        polyak_update(params, target_params, tau)

    monkeypatch.setattr(actor_critic, "polyak_update", recording_polyak_update)
    model.train(gradient_steps=3, batch_size=BATCH)
    n_critic = len(list(model.critic.parameters()))
    assert n_critic > 0
    assert calls == [(n_critic, n_critic, 0.005), (0, 0, 1.0)] * 2


def test_prioritized_replay_statistics_are_logged_per_train_call() -> None:
    """train/per_beta and train/per_max_priority are the buffer's; train/per_mean_weight averages the
    mean importance weight of the batches of this train() call only."""
    model = per_model(PERDQN, "AdvRL/GridWorld-v0", policy_kwargs=dict(net_arch=[16]))
    model._current_progress_remaining = 0.5  # beta halfway from 0.4 to 1
    batch_means = []
    sample = model.replay_buffer.sample

    def recording_sample(batch_size, env=None):
        batch = sample(batch_size, env)
        batch_means.append(float(batch.weights.mean()))
        return batch

    model.replay_buffer.sample = recording_sample
    model.train(gradient_steps=1, batch_size=BATCH)
    model.train(gradient_steps=2, batch_size=BATCH)
    logged = model.logger.name_to_value
    assert len(batch_means) == 3 and len(set(batch_means)) == 3
    assert logged["train/per_mean_weight"] == pytest.approx(np.mean(batch_means[1:]), rel=1e-6)
    assert logged["train/per_beta"] == pytest.approx(0.7) and model.replay_buffer.beta == pytest.approx(0.7)
    assert logged["train/per_max_priority"] == model.replay_buffer.max_priority > 1.0


def test_replay_buffer_class_and_action_space_errors_name_the_algorithm() -> None:
    env = gym.make("AdvRL/GridWorld-v0")
    with pytest.raises(
        ValueError,
        match=r"^replay_buffer_class must be PrioritizedReplayBuffer or a subclass of it for PERDQN, got 'ReplayBuffer'$",
    ):
        PERDQN("MlpPolicy", env, replay_buffer_class="ReplayBuffer")
    with pytest.raises(
        ValueError, match=r"^n_steps must be 1 for PERQRDQN \(n-step prioritized replay is not supported\)$"
    ):
        PERQRDQN("MlpPolicy", env, n_steps=2)

    class CustomBuffer(PrioritizedReplayBuffer):
        pass

    model = PERDQN("MlpPolicy", env, replay_buffer_class=CustomBuffer, device="cpu")
    assert type(model.replay_buffer) is CustomBuffer

    class BoxOrMultiDiscrete(PERTD3):
        _accepted_action_spaces = (spaces.Box, spaces.MultiDiscrete)

    with pytest.raises(
        ValueError,
        match=r"^env: BoxOrMultiDiscrete supports Box or MultiDiscrete action spaces, got Discrete\(4\)$",
    ):
        BoxOrMultiDiscrete("MlpPolicy", env)


def test_samples_are_normalized_by_a_vec_normalize_env_and_placed_on_the_buffer_device() -> None:
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("AdvRL/Pendulum-v0")]), clip_obs=2.0, clip_reward=5.0)
    venv.obs_rms.mean, venv.obs_rms.var = np.array([1.0, 2.0, 3.0]), np.array([4.0, 0.25, 9.0])
    venv.ret_rms.var = np.array(16.0)
    buffer = filled_buffer(12, alpha=0.0)  # observation i is (i, i, i), next observation i + 0.5
    buffer.rewards[:12, 0] = np.arange(12) * 10.0
    np.random.seed(0)  # noqa: NPY002
    raw = buffer.sample(16)
    np.random.seed(0)  # noqa: NPY002
    normalized = buffer.sample(16, env=venv)
    np.testing.assert_array_equal(normalized.indices, raw.indices)
    rows = raw.indices.astype(np.float64)[:, None]
    mean, std = np.array([1.0, 2.0, 3.0]), np.sqrt(np.array([4.0, 0.25, 9.0]) + venv.epsilon)
    np.testing.assert_allclose(
        normalized.observations.numpy(), np.clip((rows - mean) / std, -2, 2), rtol=1e-5
    )
    np.testing.assert_allclose(
        normalized.next_observations.numpy(), np.clip((rows + 0.5 - mean) / std, -2, 2), rtol=1e-5
    )
    expected_rewards = np.clip(rows * 10.0 / np.sqrt(16.0 + venv.epsilon), -5, 5)
    np.testing.assert_allclose(normalized.rewards.numpy(), expected_rewards, rtol=1e-5)
    assert np.abs(normalized.rewards.numpy()).max() == pytest.approx(5.0)  # the clip acts
    # On another device (meta: shapes without data) every field is moved there.
    on_meta = PrioritizedReplayBuffer(10, OBS, ACT, device="meta")
    on_meta.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    batch = on_meta.sample(4)
    assert {t.device.type for t in batch[:5] + (batch.weights,)} == {"meta"}
