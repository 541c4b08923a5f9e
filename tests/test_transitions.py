"""The replay flattening that Dyna and WorldModelMPC fit their models to."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_ext.common.transitions import replay_transitions


def filled_buffer(action_space: spaces.Space, handle_timeout_termination: bool = True) -> ReplayBuffer:
    """Three steps of two environments; env 1 terminates at step 1, env 0 is truncated at step 2."""
    buffer = ReplayBuffer(
        8,
        spaces.Box(-10, 10, (3,)),
        action_space,
        "cpu",
        n_envs=2,
        handle_timeout_termination=handle_timeout_termination,
    )
    for step in range(3):
        obs = np.arange(6, dtype=np.float32).reshape(2, 3) + 10 * step
        actions = (
            np.array([[step], [step + 1]])
            if isinstance(action_space, spaces.Discrete)
            else np.full((2, 2), step / 4)
        )
        dones = np.array([step == 2, step == 1])
        infos = [{"TimeLimit.truncated": step == 2}, {}]
        buffer.add(obs, obs + 1, actions, np.array([step, -step], dtype=np.float32), dones, infos)
    return buffer


def test_environments_are_flattened_row_by_row_and_truncations_are_not_terminations():
    data = replay_transitions(filled_buffer(spaces.Discrete(4)))
    assert data.observations.shape == data.next_observations.shape == (6, 3)
    np.testing.assert_array_equal(data.observations[:, 0], [0, 3, 10, 13, 20, 23])
    np.testing.assert_array_equal(data.next_observations, data.observations + 1)
    assert data.actions.dtype == np.int64
    np.testing.assert_array_equal(data.actions, [0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(data.rewards, [0, 0, 1, -1, 2, -2])
    np.testing.assert_array_equal(data.terminations, [0, 0, 0, 1, 0, 0])


def test_box_actions_keep_their_dimension_and_unhandled_timeouts_terminate():
    data = replay_transitions(filled_buffer(spaces.Box(-1, 1, (2,)), handle_timeout_termination=False))
    assert data.actions.shape == (6, 2)
    np.testing.assert_array_equal(data.actions[:, 1], [0, 0, 0.25, 0.25, 0.5, 0.5])
    np.testing.assert_array_equal(data.terminations, [0, 0, 0, 1, 1, 0])


def test_a_full_buffer_gives_every_row_in_storage_order():
    buffer = ReplayBuffer(4, spaces.Box(-100, 100, (1,)), spaces.Discrete(2), "cpu", n_envs=1)
    for step in range(6):  # 4 rows: steps 4 and 5 overwrite rows 0 and 1
        obs = np.array([[step]], dtype=np.float32)
        buffer.add(
            obs, obs + 0.5, np.array([[step % 2]]), np.array([step], np.float32), np.array([False]), [{}]
        )
    assert buffer.full and buffer.pos == 2
    data = replay_transitions(buffer)
    np.testing.assert_array_equal(data.observations[:, 0], [4, 5, 2, 3])
    np.testing.assert_array_equal(data.rewards, [4, 5, 2, 3])
    np.testing.assert_array_equal(data.actions, [0, 1, 0, 1])
