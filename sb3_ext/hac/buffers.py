"""The replay buffer of one level of :class:`~sb3_ext.hac.HAC`: goal-conditioned transitions."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
import torch as th


class TransitionKind(IntEnum):
    """The three transition types of HAC (Levy et al. 2019, section 4)."""

    #: The action taken (level 0) or the hindsight action (upper levels: the state reached in place
    #: of the proposed subgoal), with the level's own goal.
    ACTION = 0
    #: An action transition relabelled with a goal achieved later in the level's episode (HER).
    GOAL = 1
    #: The proposed subgoal, missed while the levels below acted greedily: reward ``-H``, done.
    SUBGOAL_TEST = 2


class GoalTransitionSamples(NamedTuple):
    """A batch of ``B`` transitions as tensors."""

    observations: th.Tensor  #: ``(B, obs_dim)``
    goals: th.Tensor  #: ``(B, goal_dim)``, the goal the level pursued (or its relabelling)
    actions: th.Tensor  #: ``(B,)`` int64 indices for a discrete head, else ``(B, action_dim)``
    rewards: th.Tensor  #: ``(B,)``
    next_observations: th.Tensor  #: ``(B, obs_dim)``
    dones: th.Tensor  #: ``(B,)``, 1.0 where the goal was achieved or the subgoal test failed


class GoalTransitionBuffer:
    """
    A ring buffer of transitions ``(s, a, r, s', g, done)`` of one level, plain numpy as SB3's
    buffers. ``done`` ends the bootstrap (``gamma = 0`` in the paper's notation).

    :param buffer_size: the most transitions kept (the oldest are overwritten)
    :param obs_dim: size of the flat ``observation``
    :param goal_dim: size of a goal
    :param action_dim: size of an action; 0 for a discrete head (actions stored as indices)
    :param device: device of the sampled tensors
    """

    def __init__(
        self, buffer_size: int, obs_dim: int, goal_dim: int, action_dim: int, device: th.device | str = "cpu"
    ) -> None:
        self.buffer_size, self.device = buffer_size, device
        self.discrete = action_dim == 0
        self.observations = np.zeros((buffer_size, obs_dim), np.float32)
        self.next_observations = np.zeros((buffer_size, obs_dim), np.float32)
        self.goals = np.zeros((buffer_size, goal_dim), np.float32)
        self.actions = (
            np.zeros(buffer_size, np.int64)
            if self.discrete
            else np.zeros((buffer_size, action_dim), np.float32)
        )
        self.rewards = np.zeros(buffer_size, np.float32)
        self.dones = np.zeros(buffer_size, np.float32)
        self.kinds = np.zeros(buffer_size, np.int8)
        self.pos, self.full = 0, False

    def size(self) -> int:
        """Number of transitions stored."""
        return self.buffer_size if self.full else self.pos

    def add(
        self,
        observations: np.ndarray,
        goals: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        dones: np.ndarray,
        kind: TransitionKind,
    ) -> None:
        """Store a batch of transitions of one kind (leading dimension: the transitions)."""
        n = len(rewards)
        indices = (self.pos + np.arange(n)) % self.buffer_size
        self.observations[indices] = observations
        self.goals[indices] = goals
        self.actions[indices] = actions
        self.rewards[indices] = rewards
        self.next_observations[indices] = next_observations
        self.dones[indices] = dones
        self.kinds[indices] = int(kind)
        self.full = self.full or self.pos + n >= self.buffer_size
        self.pos = int((self.pos + n) % self.buffer_size)

    def sample(self, batch_size: int) -> GoalTransitionSamples:
        """``batch_size`` transitions drawn uniformly with replacement (numpy's global generator,
        seeded by SB3's ``set_random_seed``)."""
        indices = np.random.randint(0, self.size(), size=batch_size)  # noqa: NPY002
        return self.samples(indices)

    def samples(self, indices: np.ndarray) -> GoalTransitionSamples:
        """The transitions at ``indices`` as tensors."""

        def tensor(array: np.ndarray) -> th.Tensor:
            return th.as_tensor(array[indices], device=self.device)

        return GoalTransitionSamples(
            tensor(self.observations),
            tensor(self.goals),
            tensor(self.actions),
            tensor(self.rewards),
            tensor(self.next_observations),
            tensor(self.dones),
        )
