"""The transitions of an SB3 replay buffer as flat arrays, the data set a dynamics model is fitted to."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer


class Transitions(NamedTuple):
    """Batch-first arrays of ``N`` transitions."""

    observations: np.ndarray  #: ``(N, *obs_shape)``
    actions: np.ndarray  #: ``(N, action_dim)``; Discrete actions: int64 indices ``(N,)``
    next_observations: np.ndarray  #: ``(N, *obs_shape)``
    rewards: np.ndarray  #: ``(N,)``
    terminations: np.ndarray  #: ``(N,)``, 1.0 where the episode terminated (not at a time limit)


def replay_transitions(buffer: ReplayBuffer) -> Transitions:
    """Every transition stored in ``buffer`` so far, its environments flattened into one batch.

    A time-limit truncation is not a termination: SB3 marks those ``timeouts`` (when the buffer
    handles timeout termination), and a model must not learn to predict them as ends of episodes.
    Actions are as stored (an SB3 algorithm stores Box actions scaled to [-1, 1]). The buffer must
    keep its next observations (``optimize_memory_usage=False``).
    """
    n = buffer.buffer_size if buffer.full else buffer.pos
    actions = buffer.actions[:n].reshape(-1, buffer.action_dim)
    if isinstance(buffer.action_space, spaces.Discrete):
        actions = actions.reshape(-1).astype(np.int64)
    timeouts = buffer.timeouts[:n] if buffer.handle_timeout_termination else 0.0
    return Transitions(
        observations=buffer.observations[:n].reshape(-1, *buffer.obs_shape),
        actions=actions,
        next_observations=buffer.next_observations[:n].reshape(-1, *buffer.obs_shape),
        rewards=buffer.rewards[:n].reshape(-1),
        terminations=(buffer.dones[:n] * (1.0 - timeouts)).reshape(-1),
    )
