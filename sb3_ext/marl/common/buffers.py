"""Replay buffers of joint transitions and of whole episodes from a PettingZoo parallel environment."""

from __future__ import annotations

from collections import deque
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

    def end_episode(self) -> None:
        """Nothing to do: transitions are stored as they come (the episode buffer's interface)."""

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


class MultiAgentEpisodeSamples(NamedTuple):
    """A batch of whole episodes, zero-padded to the longest: batch axis first, time second, agent
    axis third (``possible_agents`` order). Each step's fields mean what they mean in
    :class:`MultiAgentSamples`; ``observations`` has one step more than the others (the last
    step's next observations, to bootstrap from), and ``filled`` is 0 on the padding."""

    observations: th.Tensor  # (B, T + 1, N, obs_dim)
    actions: th.Tensor  # (B, T, N) long
    rewards: th.Tensor  # (B, T, N)
    terminations: th.Tensor  # (B, T, N)
    active: th.Tensor  # (B, T, N)
    next_active: th.Tensor  # (B, T, N)
    states: th.Tensor  # (B, T, state_dim)
    next_states: th.Tensor  # (B, T, state_dim)
    team_rewards: th.Tensor  # (B, T)
    team_terminations: th.Tensor  # (B, T)
    filled: th.Tensor  # (B, T)


class MultiAgentEpisodeBuffer:
    """
    A buffer of whole episodes of a PettingZoo parallel env, for recurrent agents that are trained
    by unrolling their networks from the start of each episode (QMIX's GRU agents).

    ``add`` takes the same joint steps as :class:`MultiAgentReplayBuffer` (consecutive steps of
    one episode: the observations of a step are the next observations of the step before);
    ``end_episode`` stores the episode collected so far, which only then can be sampled. Episodes
    cut short (the time limit, or a new ``learn`` call resetting the env) keep the bootstrap from
    their last next observations. The oldest episodes are dropped once more than ``buffer_size``
    steps are stored (the newest episode is always kept).

    :param buffer_size: number of joint steps kept (in whole episodes)
    :param agents: the env's ``possible_agents``
    :param observation_space: every agent's (identical, flat ``Box``) observation space
    :param action_space: every agent's ``Discrete`` action space
    :param state_dim: size of the global state
    :param device: torch device of the sampled batches
    """

    _STEP_FIELDS = ("observations", "actions", "rewards", "terminations", "active", "next_active", "states")

    def __init__(
        self,
        buffer_size: int,
        agents: list[str],
        observation_space: spaces.Box,
        action_space: spaces.Discrete,
        state_dim: int,
        device: th.device | str = "cpu",
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"action_space: the episode buffer stores Discrete actions, got {action_space}")
        self.buffer_size = check_positive_int("buffer_size", buffer_size)
        self.agents = list(agents)
        self.index = {name: i for i, name in enumerate(self.agents)}
        self.obs_dim, self.state_dim = int(np.prod(observation_space.shape)), int(state_dim)
        self.device = th.device(device)
        self.episodes: deque[dict[str, np.ndarray]] = deque()
        self._stored_steps = 0
        self._pending: dict[str, list[np.ndarray]] = {name: [] for name in self._STEP_FIELDS}
        self._last_next: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_episodes(self) -> int:
        """Number of complete episodes stored."""
        return len(self.episodes)

    def size(self) -> int:
        """Number of joint steps in the stored episodes."""
        return self._stored_steps

    def add(
        self,
        observations: dict[str, np.ndarray],
        actions: dict[str, int],
        rewards: dict[str, float],
        next_observations: dict[str, np.ndarray],
        terminations: dict[str, bool],
        state: np.ndarray,
        next_state: np.ndarray,
    ) -> None:
        """Append one parallel-env step to the episode being collected: the dicts hold the agents
        that acted (the keys of ``actions``); the others are inactive this step."""
        unknown = set(actions) - set(self.index)
        if unknown:
            raise ValueError(
                f"actions: unknown agents {sorted(unknown)}; the buffer's agents are {self.agents}"
            )
        n = len(self.agents)
        step = {
            "observations": np.zeros((n, self.obs_dim), np.float32),
            "actions": np.zeros(n, np.int64),
            "rewards": np.zeros(n, np.float32),
            "terminations": np.zeros(n, np.float32),
            "active": np.zeros(n, np.float32),
            "next_active": np.zeros(n, np.float32),
            "states": np.asarray(state, dtype=np.float32).reshape(-1),
        }
        next_obs = np.zeros((n, self.obs_dim), np.float32)
        for name, action in actions.items():
            i = self.index[name]
            step["observations"][i] = np.asarray(observations[name], dtype=np.float32).reshape(-1)
            next_obs[i] = np.asarray(next_observations[name], dtype=np.float32).reshape(-1)
            step["actions"][i] = int(action)
            step["rewards"][i] = rewards[name]
            step["terminations"][i] = float(terminations[name])
            step["active"][i] = 1.0
            step["next_active"][i] = float(not terminations[name])
        for name, value in step.items():
            self._pending[name].append(value)
        self._last_next = (next_obs, np.asarray(next_state, dtype=np.float32).reshape(-1))

    def end_episode(self) -> None:
        """Store the episode collected since the last call (nothing if no step was added)."""
        if self._last_next is None:
            return
        episode = {name: np.stack(values) for name, values in self._pending.items()}
        next_obs, next_state = self._last_next
        episode["observations"] = np.concatenate([episode["observations"], next_obs[None]])
        episode["states"] = np.concatenate([episode["states"], next_state[None]])
        self.episodes.append(episode)
        self._stored_steps += len(episode["actions"])
        while self._stored_steps > self.buffer_size and len(self.episodes) > 1:
            self._stored_steps -= len(self.episodes.popleft()["actions"])
        self._pending = {name: [] for name in self._STEP_FIELDS}
        self._last_next = None

    def sample(self, batch_size: int, rng: np.random.Generator) -> MultiAgentEpisodeSamples:
        """``batch_size`` episodes drawn uniformly (with replacement) by ``rng``."""
        if not self.episodes:
            raise ValueError("cannot sample from a buffer without a complete episode")
        return self.samples(rng.integers(0, len(self.episodes), size=batch_size))

    def samples(self, indices: np.ndarray) -> MultiAgentEpisodeSamples:
        """The stored episodes at ``indices`` (oldest first), zero-padded to the longest, as tensors."""
        chosen = [self.episodes[int(i)] for i in indices]
        lengths = [len(episode["actions"]) for episode in chosen]
        steps = max(lengths)

        def padded(name: str, extra: int = 0) -> np.ndarray:
            first = chosen[0][name]
            out = np.zeros((len(chosen), steps + extra, *first.shape[1:]), dtype=first.dtype)
            for b, episode in enumerate(chosen):
                out[b, : len(episode[name])] = episode[name]
            return out

        observations, states = padded("observations", 1), padded("states", 1)
        rewards, terminations, active = padded("rewards"), padded("terminations"), padded("active")
        filled = (np.arange(steps)[None] < np.asarray(lengths)[:, None]).astype(np.float32)
        counts = np.maximum(active.sum(axis=-1), 1.0)
        team_rewards = (rewards * active).sum(axis=-1) / counts
        team_terminations = np.all((terminations == 1) | (active == 0), axis=-1).astype(np.float32)

        def tensor(array: np.ndarray) -> th.Tensor:
            return th.as_tensor(array, device=self.device)

        return MultiAgentEpisodeSamples(
            tensor(observations),
            tensor(padded("actions")),
            tensor(rewards),
            tensor(terminations),
            tensor(active),
            tensor(padded("next_active")),
            tensor(states[:, :-1]),
            tensor(states[:, 1:]),
            tensor(team_rewards),
            tensor(team_terminations),
            tensor(filled),
        )
