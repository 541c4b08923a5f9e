"""The prioritized replay buffer of ``sb3_ext.common.buffers``: several environments with
``optimize_memory_usage``, the exact priority updates and their errors (the sampling statistics and
the PER algorithms are tested in ``test_per.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_ext.common.buffers import PrioritizedReplayBuffer

OBS = spaces.Box(-1000.0, 1000.0, (2,), np.float32)
ACT = spaces.Box(-1.0, 1.0, (1,), np.float32)


def add_rows(buffer: PrioritizedReplayBuffer, rows: range) -> None:
    """Row ``r``, env ``e`` observes ``10 r + e`` and then ``10 r + e + 0.5``."""
    n_envs = buffer.n_envs
    for row in rows:
        obs = (10.0 * row + np.arange(n_envs, dtype=np.float32))[:, None].repeat(2, axis=1)
        buffer.add(
            obs, obs + 0.5, np.zeros((n_envs, 1)), np.full(n_envs, row), np.zeros(n_envs), [{}] * n_envs
        )


def test_memory_optimized_buffer_with_two_envs_pairs_each_transition_with_its_own_next_observation() -> None:
    """With one observation array, transition (row, env) reads its next observation at (row + 1,
    env), i.e. n_envs flat entries further; the row about to be overwritten cannot be sampled."""
    buffer = PrioritizedReplayBuffer(
        8, OBS, ACT, device="cpu", n_envs=2, optimize_memory_usage=True, handle_timeout_termination=False
    )
    assert buffer.buffer_size == 4 and buffer.tree.capacity == 8
    add_rows(buffer, range(6))  # rows 4 and 5 overwrite rows 0 and 1; row 2 is next
    # Row 2's observation slot now holds the latest transition's (row 1's) next observation: both
    # of row 2's transitions are out.
    np.testing.assert_array_equal(buffer.tree.priorities, [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    np.random.seed(0)  # noqa: NPY002  (the buffer draws from numpy's global generator, as SB3's does)
    batch = buffer.sample(64)
    assert not np.isin(batch.indices, [4, 5]).any() and np.isin([0, 1, 2, 3, 6, 7], batch.indices).all()
    observations, next_observations = batch.observations.numpy(), batch.next_observations.numpy()
    # The next observation of (row, env) is the observation stored at (row + 1, env): the next
    # step's, 10 higher, except for the latest row, whose next observation is its own + 0.5.
    latest = batch.indices // 2 == 1
    expected = np.where(latest, observations[:, 0] + 0.5, observations[:, 0] + 10.0)
    np.testing.assert_array_equal(next_observations[:, 0], expected)
    np.testing.assert_array_equal(observations[:, 0] % 10, batch.indices % 2)


def test_update_priorities_stores_abs_error_plus_eps_to_the_alpha_and_tracks_the_largest() -> None:
    buffer = PrioritizedReplayBuffer(6, OBS, ACT, device="cpu", alpha=0.5, eps=0.25)
    add_rows(buffer, range(6))
    errors = th.tensor([[-1.75], [0.75]], requires_grad=True)  # any shape, any sign, with a graph
    buffer.update_priorities(np.array([[4], [1]]), errors * 1.0)
    np.testing.assert_allclose(buffer.tree.priorities, [1.0, 1.0, 1.0, 1.0, np.sqrt(2.0), 1.0])
    assert buffer.max_priority == 2.0  # |-1.75| + 0.25, before the exponent
    buffer.update_priorities(np.array([0]), np.array([0.5]))  # smaller: the largest stays
    assert buffer.max_priority == 2.0 and buffer.tree[0] == np.sqrt(0.75)
    # New transitions enter at the largest priority, to the alpha.
    buffer.add(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    assert buffer.tree[0] == np.sqrt(2.0)
    # An empty update changes nothing.
    before = buffer.tree.priorities
    buffer.update_priorities(np.array([], dtype=np.int64), np.array([]))
    np.testing.assert_array_equal(buffer.tree.priorities, before)
    assert buffer.max_priority == 2.0


def test_update_priorities_errors_name_the_counts_and_write_nothing() -> None:
    buffer = PrioritizedReplayBuffer(4, OBS, ACT, device="cpu")
    add_rows(buffer, range(4))
    with pytest.raises(ValueError, match=r"^td_errors must hold one value per index: got 2 for 3 indices$"):
        buffer.update_priorities(np.arange(3), np.ones(2))
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match=r"^td_errors must be finite$"):
            buffer.update_priorities(np.arange(2), np.array([1.0, bad]))
    np.testing.assert_array_equal(buffer.tree.priorities, np.ones(4))
    assert buffer.max_priority == 1.0
    with pytest.raises(ValueError, match=r"^indices must lie in \[0, 4\)"):
        buffer.update_priorities(np.array([4]), np.array([1.0]))


def test_samples_are_float32_tensors_of_the_stored_transitions() -> None:
    buffer = PrioritizedReplayBuffer(6, OBS, ACT, device="cpu", n_envs=2, alpha=0.0)
    add_rows(buffer, range(3))
    np.random.seed(3)  # noqa: NPY002  (the buffer draws from numpy's global generator, as SB3's does)
    batch = buffer.sample(5)
    assert batch.discounts is None
    assert batch.indices.dtype == np.int64 and batch.indices.shape == (5,)
    for field in (batch.observations, batch.next_observations, batch.actions):
        assert field.dtype == th.float32
    assert batch.observations.shape == (5, 2) and batch.actions.shape == (5, 1)
    assert batch.dones.shape == batch.rewards.shape == batch.weights.shape == (5, 1)
    rows = batch.indices // 2
    np.testing.assert_array_equal(batch.rewards.numpy()[:, 0], rows)
    np.testing.assert_array_equal(batch.observations.numpy()[:, 1], 10.0 * rows + batch.indices % 2)
    np.testing.assert_array_equal(batch.next_observations.numpy(), batch.observations.numpy() + 0.5)
    np.testing.assert_array_equal(batch.weights.numpy(), np.ones((5, 1)))  # alpha 0: uniform
    # The same seed draws the same batch.
    np.random.seed(3)  # noqa: NPY002
    np.testing.assert_array_equal(buffer.sample(5).indices, batch.indices)


def test_a_batch_of_one_transition_can_be_sampled() -> None:
    buffer = PrioritizedReplayBuffer(4, OBS, ACT, device="cpu")
    add_rows(buffer, range(4))
    np.random.seed(0)  # noqa: NPY002
    batch = buffer.sample(1)
    assert batch.indices.shape == (1,) and batch.observations.shape == (1, 2)
    np.testing.assert_array_equal(batch.observations.numpy()[0], [10.0 * batch.indices[0]] * 2)
    assert batch.weights.tolist() == [[1.0]]


@pytest.mark.parametrize(
    "td_errors",
    [np.array([3, -1]), [3, -1], np.array([1.1, -0.7], np.float32), th.tensor([1.1, -0.7])],
    ids=["int-array", "int-list", "float32-array", "float32-tensor"],
)
def test_priorities_are_computed_in_float64_from_integer_and_float32_errors(td_errors) -> None:
    """``(|delta| + eps)^alpha`` in float64, whatever the errors' dtype: integer errors are accepted,
    float32 errors are widened before eps and the exponent are applied."""
    buffer = PrioritizedReplayBuffer(4, OBS, ACT, device="cpu", alpha=0.6, eps=1e-6)
    add_rows(buffer, range(4))
    buffer.update_priorities(np.array([1, 2]), td_errors)
    errors = np.abs(np.asarray(td_errors, dtype=np.float64))
    expected = (errors + 1e-6) ** 0.6
    assert buffer.tree[np.array([1, 2])].tolist() == expected.tolist()
    assert buffer.max_priority == float(errors[0] + 1e-6)
