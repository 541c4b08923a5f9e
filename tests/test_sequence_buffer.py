"""SequenceReplayBuffer: the Dreamer step layout, episode boundaries always marked by ``is_first``,
time limits not terminal, wrap-around, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_ext.common.sequence_buffer import SequenceReplayBuffer

OBS_SPACE = spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACTION_SPACE = spaces.Box(-1, 1, (1,), np.float32)


def fill(buffer: SequenceReplayBuffer, episode_lengths: list[list[int]], truncate_every: int = 3) -> None:
    """
    Play episodes of the given lengths in each env (SB3 transitions). Observations are
    ``(episode id, step)``; the action and reward of the transition into step ``k`` are ``k``;
    every ``truncate_every``-th episode ends by a time limit, the others terminate.
    """
    n_envs = buffer.n_envs
    queues = [list(lengths) for lengths in episode_lengths]
    episode = np.array([1000 * env for env in range(n_envs)])
    step = np.zeros(n_envs, dtype=int)
    remaining = np.array([queue.pop(0) for queue in queues])
    while True:
        obs = np.stack([episode, step], 1).astype(np.float32)
        next_step = step + 1
        done = next_step >= remaining
        next_obs = np.stack([episode, next_step], 1).astype(np.float32)
        infos = [
            {"TimeLimit.truncated": bool(d and episode[i] % truncate_every == 0)} for i, d in enumerate(done)
        ]
        buffer.add(
            obs, next_obs, next_step[:, None].astype(np.float32), next_step.astype(np.float32), done, infos
        )
        step = np.where(done, 0, next_step)
        for env in np.flatnonzero(done):
            if not queues[env]:
                return
            remaining[env] = queues[env].pop(0)
            episode[env] += 1


def check_window(obs: np.ndarray, actions, rewards, is_first, is_terminal, truncate_every: int = 3) -> None:
    for t in range(len(obs)):
        episode, step = obs[t]
        assert bool(is_first[t]) == (step == 0)
        if step == 0:
            assert actions[t, 0] == 0 and rewards[t] == 0 and not is_terminal[t]
        else:
            assert actions[t, 0] == step and rewards[t] == step
        if t > 0:
            previous_episode, previous_step = obs[t - 1]
            if episode == previous_episode:
                assert step == previous_step + 1
            else:
                # An episode boundary inside the window: marked, and the new episode starts there.
                assert is_first[t] and step == 0
        if is_terminal[t]:
            assert episode % truncate_every != 0  # time limits are never terminal


def test_first_steps_hold_the_first_observation_with_zero_action_and_reward() -> None:
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill(buffer, [[3, 2]])
    stored = buffer.observations[: buffer.positions[0], 0]
    np.testing.assert_array_equal(stored, [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0], [1, 1], [1, 2]])
    np.testing.assert_array_equal(buffer.is_first[:7, 0], [1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(buffer.actions[:7, 0, 0], [0, 1, 2, 3, 0, 1, 2])
    # Episode 0 ends by its time limit (0 % 3 == 0): not terminal; episode 1 terminates.
    np.testing.assert_array_equal(buffer.is_terminal[:7, 0], [0, 0, 0, 0, 0, 0, 1])
    assert buffer.size() == 7


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.lists(st.integers(1, 9), min_size=1, max_size=12), min_size=1, max_size=3),
    capacity=st.integers(4, 40),
    sequence_length=st.integers(2, 6),
    seed=st.integers(0, 2**16),
)
def test_windows_never_cross_an_episode_end_unmarked(lengths, capacity, sequence_length, seed) -> None:
    n_envs = len(lengths)
    buffer = SequenceReplayBuffer(capacity * n_envs, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=n_envs)
    fill(buffer, lengths)
    if not buffer.can_sample(sequence_length):
        with pytest.raises(ValueError, match="sequence_length"):
            buffer.sample(4, sequence_length)
        return
    np.random.seed(seed)  # noqa: NPY002 (the buffer samples with numpy's global generator, like SB3's)
    batch = buffer.sample(16, sequence_length)
    assert batch.observations.shape == (16, sequence_length, 2)
    for i in range(16):
        check_window(
            batch.observations[i].numpy(),
            batch.actions[i].numpy(),
            batch.rewards[i].numpy(),
            batch.is_first[i].numpy(),
            batch.is_terminal[i].numpy(),
        )


def test_windows_cover_every_stored_window_uniformly_after_wrap_around() -> None:
    buffer = SequenceReplayBuffer(10, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill(buffer, [[30]])  # 31 steps written into 10 slots: steps 21..30 remain
    np.random.seed(0)  # noqa: NPY002 (the buffer samples with numpy's global generator, like SB3's)
    starts = buffer.sample(4000, 4).observations[:, 0, 1].numpy()
    # 10 stored steps -> 7 windows (starts 21..27), never one that wraps from step 30 to 21.
    values, counts = np.unique(starts, return_counts=True)
    np.testing.assert_array_equal(values, np.arange(21, 28))
    assert counts.min() > 4000 / 7 * 0.8


def test_environments_are_weighted_by_their_number_of_windows() -> None:
    buffer = SequenceReplayBuffer(200, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=2)
    fill(buffer, [[50], [50]])
    np.random.seed(0)  # noqa: NPY002 (the buffer samples with numpy's global generator, like SB3's)
    episodes = buffer.sample(2000, 5).observations[:, 0, 0].numpy()
    assert 0.45 < np.mean(episodes == 0) < 0.55


def test_discrete_actions_are_stored_as_indices() -> None:
    buffer = SequenceReplayBuffer(20, OBS_SPACE, spaces.Discrete(3), device="cpu")
    obs = np.zeros((1, 2), np.float32)
    buffer.add(obs, obs, np.array([2]), np.array([0.5]), np.array([False]), [{}])
    np.testing.assert_array_equal(buffer.actions[:2, 0, 0], [0, 2])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(buffer_size=1), "buffer_size"),
        (dict(n_envs=0), "n_envs"),
        (dict(optimize_memory_usage=True), "optimize_memory_usage"),
    ],
)
def test_bad_buffer_arguments_are_value_errors_naming_them(kwargs: dict, name: str) -> None:
    arguments = dict(buffer_size=100, observation_space=OBS_SPACE, action_space=ACTION_SPACE, device="cpu")
    with pytest.raises(ValueError, match=name):
        SequenceReplayBuffer(**{**arguments, **kwargs})


def test_sequence_length_below_two_and_too_long_windows_are_refused() -> None:
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill(buffer, [[5]])
    with pytest.raises(ValueError, match="sequence_length"):
        buffer.sample(4, 1)
    with pytest.raises(ValueError, match="sequence_length"):
        buffer.sample(4, 7)
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(0, 3)
