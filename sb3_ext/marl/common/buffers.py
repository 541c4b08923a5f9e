"""A replay buffer of joint transitions from a PettingZoo parallel environment."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_ext.common.validation import check_positive_int


class MultiAgentSamples(NamedTuple):
    """A batch of joint transitions; agent axis second, in the env's ``possible_agents`` order.

    ``active``: the agent acted at this step (agents that left the episode did not: their
    observation, action and reward are zeros and every loss must mask them out).
    ``next_active``: the agent did not terminate at this step, so its next observation is valued
    (a truncation by the time limit keeps the bootstrap).
    ``terminations``: the agent's episode ended for good at this step (no bootstrap).
    ``team_terminations``: no agent is left in play for good (every agent terminated).
    ``team_rewards``: the mean reward of the agents that acted.
    """

    observations: th.Tensor  # (B, N, obs_dim)
    actions: th.Tensor  # (B, N, action_dim) float, or (B, N) long for Discrete actions
    rewards: th.Tensor  # (B, N)
    next_observations: th.Tensor  # (B, N, obs_dim)
    terminations: th.Tensor  # (B, N)
    active: th.Tensor  # (B, N)
    next_active: th.Tensor  # (B, N)
    states: th.Tensor  # (B, state_dim)
    next_states: th.Tensor  # (B, state_dim)
    team_rewards: th.Tensor  # (B,)
    team_terminations: th.Tensor  # (B,)


class MultiAgentReplayBuffer:
    """
    A circular buffer of joint transitions ``(obs, actions, rewards, next_obs, terminations,
    state, next_state)`` of every agent of a PettingZoo parallel env, stored as arrays with an
    agent axis (agents in ``possible_agents`` order, so agent ``i`` is always column ``i``).

    Agents that leave mid-episode (terminated, e.g. by leaving the arena) are recorded as not
    ``active`` from the next step on; the learner masks them out. A truncation (time limit) is not
    a termination: the transition keeps its bootstrap, so only ``terminations`` are stored.

    :param buffer_size: number of joint transitions kept
    :param agents: the env's ``possible_agents``
    :param observation_space: every agent's (identical, flat ``Box``) observation space
    :param action_space: every agent's (identical) action space: ``Box`` or ``Discrete``
    :param state_dim: size of the global state
    :param device: torch device of the sampled batches
    """

    def __init__(
        self,
        buffer_size: int,
        agents: list[str],
        observation_space: spaces.Box,
        action_space: spaces.Box | spaces.Discrete,
        state_dim: int,
        device: th.device | str = "cpu",
    ) -> None:
        self.buffer_size = check_positive_int("buffer_size", buffer_size)
        self.agents = list(agents)
        self.index = {name: i for i, name in enumerate(self.agents)}
        n, size = len(self.agents), self.buffer_size
        obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, spaces.Discrete)
        action_shape = () if self.discrete else (int(np.prod(action_space.shape)),)
        self.observations = np.zeros((size, n, obs_dim), dtype=np.float32)
        self.next_observations = np.zeros((size, n, obs_dim), dtype=np.float32)
        self.actions = np.zeros((size, n, *action_shape), dtype=np.int64 if self.discrete else np.float32)
        self.rewards = np.zeros((size, n), dtype=np.float32)
        self.terminations = np.zeros((size, n), dtype=np.float32)
        self.active = np.zeros((size, n), dtype=np.float32)
        self.next_active = np.zeros((size, n), dtype=np.float32)
        self.states = np.zeros((size, state_dim), dtype=np.float32)
        self.next_states = np.zeros((size, state_dim), dtype=np.float32)
        self.device = th.device(device)
        self.pos, self.full = 0, False

    def size(self) -> int:
        return self.buffer_size if self.full else self.pos

    def add(
        self,
        observations: dict[str, np.ndarray],
        actions: dict[str, np.ndarray | int],
        rewards: dict[str, float],
        next_observations: dict[str, np.ndarray],
        terminations: dict[str, bool],
        state: np.ndarray,
        next_state: np.ndarray,
    ) -> None:
        """Store one parallel-env step: the dicts hold the agents that acted (the keys of
        ``actions``); the others are inactive this step."""
        unknown = set(actions) - set(self.index)
        if unknown:
            raise ValueError(
                f"actions: unknown agents {sorted(unknown)}; the buffer's agents are {self.agents}"
            )
        p = self.pos
        for array in (self.observations, self.next_observations, self.actions, self.rewards):
            array[p] = 0
        self.terminations[p] = 0
        self.active[p] = 0
        self.next_active[p] = 0
        for name, action in actions.items():
            i = self.index[name]
            self.observations[p, i] = np.asarray(observations[name], dtype=np.float32).reshape(-1)
            self.next_observations[p, i] = np.asarray(next_observations[name], dtype=np.float32).reshape(-1)
            self.actions[p, i] = action
            self.rewards[p, i] = rewards[name]
            self.terminations[p, i] = float(terminations[name])
            self.active[p, i] = 1.0
            self.next_active[p, i] = float(not terminations[name])
        self.states[p] = np.asarray(state, dtype=np.float32).reshape(-1)
        self.next_states[p] = np.asarray(next_state, dtype=np.float32).reshape(-1)
        self.pos = (p + 1) % self.buffer_size
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, rng: np.random.Generator) -> MultiAgentSamples:
        """``batch_size`` joint transitions drawn uniformly (with replacement) by ``rng``."""
        if self.size() == 0:
            raise ValueError("cannot sample from an empty buffer")
        rows = rng.integers(0, self.size(), size=batch_size)
        return self.samples(rows)

    def samples(self, rows: np.ndarray) -> MultiAgentSamples:
        """The joint transitions at ``rows`` as tensors."""

        def tensor(array: np.ndarray) -> th.Tensor:
            return th.as_tensor(array[rows], device=self.device)

        active = self.active[rows]
        counts = np.maximum(active.sum(axis=1), 1.0)
        team_rewards = (self.rewards[rows] * active).sum(axis=1) / counts
        # The team's episode ends for good when every agent that acted terminated.
        team_terminations = np.all((self.terminations[rows] == 1) | (active == 0), axis=1).astype(np.float32)
        return MultiAgentSamples(
            tensor(self.observations),
            tensor(self.actions),
            tensor(self.rewards),
            tensor(self.next_observations),
            tensor(self.terminations),
            th.as_tensor(active, device=self.device),
            tensor(self.next_active),
            tensor(self.states),
            tensor(self.next_states),
            th.as_tensor(team_rewards, device=self.device),
            th.as_tensor(team_terminations, device=self.device),
        )
