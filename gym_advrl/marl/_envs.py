"""PettingZoo AEC and parallel front ends over one :class:`~gym_advrl.marl._particles.ParticleWorld`.

Both are native (neither is a conversion of the other), so the parallel API costs one
vectorized world step per call. Given the same seed and actions they produce identical
observations and rewards. Each scenario module subclasses them and sets ``scenario`` and
``metadata["name"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle, seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import wrappers

from gym_advrl.marl._particles import ParticleWorld, Scenario, check_continuous
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import check_int, reject_unknown_kwargs

METADATA: dict[str, Any] = {
    "render_modes": ["human", "rgb_array"],
    "render_fps": 30,
    "is_parallelizable": True,
}


class _ParticleEnvCommon(RenderMixin, EzPickle):
    """Construction, spaces, seeding, global state, copies and rendering shared by both APIs."""

    scenario: ClassVar[Scenario]
    metadata: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A scenario's class names its environment in ``metadata["name"]`` (PettingZoo's convention)."""
        super().__init_subclass__(**kwargs)
        if "scenario" in cls.__dict__:
            cls.metadata = {**cls.metadata, "name": cls.scenario.name}

    @reject_unknown_kwargs
    def __init__(
        self,
        n_agents: int = 3,
        continuous_actions: bool = True,
        max_cycles: int = 200,
        render_mode: str | None = None,
        noise_std: float = 0.02,
        arena_radius: float = 5.0,
    ) -> None:
        EzPickle.__init__(
            self,
            n_agents=n_agents,
            continuous_actions=continuous_actions,
            max_cycles=max_cycles,
            render_mode=render_mode,
            noise_std=noise_std,
            arena_radius=arena_radius,
        )
        self.world = ParticleWorld(self.scenario, n_agents, noise_std, arena_radius)
        self.continuous_actions = check_continuous(continuous_actions)
        self.max_cycles = check_int("max_cycles", max_cycles, 1)
        self._init_render(render_mode)
        self.possible_agents = list(self.world.names)
        #: Each agent's team (its name prefix): ``"agent"`` in the one-team worlds, ``"red"`` /
        #: ``"blue"`` in ``mixed_v0``.
        self.teams = {
            name: self.scenario.team_names[team]
            for name, team in zip(self.possible_agents, self.world.teams, strict=True)
        }
        self.agents: list[str] = []
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        observation_space = self.world.observation_space()
        self.observation_spaces = {name: observation_space for name in self.possible_agents}
        self.action_spaces: dict[str, spaces.Space] = {
            name: spaces.Box(-1.0, 1.0, (2,), np.float32) if self.continuous_actions else spaces.Discrete(5)
            for name in self.possible_agents
        }
        self.state_space = self.world.state_space()
        self.np_random: np.random.Generator | None = None
        self.num_cycles = 0
        self._started = False

    def __getstate__(self) -> dict[str, Any]:
        """EzPickle's constructor arguments plus the running state (all but a pygame window).

        So ``copy.deepcopy``, ``pickle`` and ``cloudpickle`` of a running env give an env that
        continues the episode identically (positions, agents, cycle count, random generator).
        """
        state = EzPickle.__getstate__(self)
        running = RenderMixin.__getstate__(self)
        for name in state:
            running.pop(name, None)
        state["_running_state"] = running
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        running = state.pop("_running_state", None)
        EzPickle.__setstate__(self, state)  # builds (and checks) a fresh env from the arguments
        if running is not None:
            self.__dict__.update(running)

    def observation_space(self, agent: str) -> spaces.Space:
        """The (cached, identical every call) observation space of ``agent``."""
        return self.observation_spaces[self._checked(agent)]

    def action_space(self, agent: str) -> spaces.Space:
        """The (cached, identical every call) action space of ``agent``."""
        return self.action_spaces[self._checked(agent)]

    def state(self) -> np.ndarray:
        """Global state: all positions, all velocities, in-play flags (``state_space``)."""
        return self.world.state()

    def _checked(self, agent: str) -> str:
        if agent not in self._index:
            raise ValueError(f"unknown agent {agent!r}; possible agents are {self.possible_agents}")
        return agent

    def _reset_world(self, seed: int | None) -> None:
        # ``options`` is accepted for API compatibility and unused, as in MPE.
        if seed is not None or self.np_random is None:
            self.np_random, _ = seeding.np_random(seed)
        self.world.reset(self.np_random)
        self.agents = list(self.possible_agents)
        self.num_cycles = 0
        self._started = True

    def _draw(self) -> np.ndarray:
        return self.world.draw()

    def _render_ready(self) -> bool:
        return self._started


class ParticleAECEnv(_ParticleEnvCommon, AECEnv):
    """Agent-environment-cycle API: agents act in turn; the world moves after the last live one.

    After a world step the agents that left the arena (or every agent, when ``max_cycles`` is
    reached) are terminated or truncated; each must then be stepped once with ``None``, which
    removes it from ``agents``. It is never selected again.
    """

    metadata = METADATA

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        AECEnv.__init__(self)
        self._accelerations = np.zeros((self.world.n_agents, 2))
        self._to_act: list[str] = []

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self._reset_world(seed)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {name: {} for name in self.agents}
        self._accelerations[:] = 0.0
        self._to_act = list(self.agents)
        self.agent_selection = self._to_act[0]
        self._render_human_step()

    def observe(self, agent: str) -> np.ndarray:
        return self.world.observations()[self._index[self._checked(agent)]].copy()

    def step(self, action: Any) -> None:
        if not self._started:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        if not self.agents:
            raise gym.error.ResetNeeded("every agent is done; call reset()")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._remove_done_agent(agent, action)
            return
        self._accelerations[self._index[agent]] = self.world.accelerations(
            [action], [agent], self.action_spaces[agent]
        )[0]
        self._to_act.pop(0)
        self._cumulative_rewards[agent] = 0.0
        if self._to_act:
            self._clear_rewards()
        else:
            self._step_world()
            self._accumulate_rewards()
            self._to_act = [a for a in self.agents if not (self.terminations[a] or self.truncations[a])]
            self._render_human_step()
        self._select_next()

    def _step_world(self) -> None:
        rewards, exited = self.world.step(self._accelerations, self.np_random)
        self._accelerations[:] = 0.0
        self.num_cycles += 1
        truncate = self.num_cycles >= self.max_cycles
        # Every agent still listed is in play here: done agents leave before the next cycle starts.
        for agent in self.agents:
            i = self._index[agent]
            self.rewards[agent] = float(rewards[i])
            self.terminations[agent] = bool(exited[i])
            self.truncations[agent] = truncate

    def _remove_done_agent(self, agent: str, action: Any) -> None:
        if action is not None:
            raise ValueError(
                f"agent {agent!r} is terminated or truncated; its only valid action is None, got {action!r}"
            )
        self.agents.remove(agent)
        for table in (
            self.rewards,
            self._cumulative_rewards,
            self.terminations,
            self.truncations,
            self.infos,
        ):
            del table[agent]
        self._clear_rewards()
        self._select_next()

    def _select_next(self) -> None:
        """Done agents step (with ``None``) first, then the live agents yet to act this cycle."""
        done = [a for a in self.agents if self.terminations[a] or self.truncations[a]]
        if done:
            self.agent_selection = done[0]
        elif self._to_act:
            self.agent_selection = self._to_act[0]


class ParticleParallelEnv(_ParticleEnvCommon, ParallelEnv):
    """Parallel API: one call moves every agent in play; done agents leave ``agents`` at once.

    ``step(actions)`` needs exactly one action per agent in ``agents``; an action for an unknown
    or already-done agent, or a missing one, raises ``ValueError`` naming that agent. After the
    last agent is done, ``step({})`` returns empty dicts (what SuperSuit's ``black_death_v3``
    relies on) until ``reset``.
    """

    metadata = METADATA

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self._reset_world(seed)
        observations = self.world.observations()
        self._render_human_step()
        return {a: observations[i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self._started:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        if not isinstance(actions, dict):
            raise ValueError(
                f"actions must be a dict from agent name to action, got {type(actions).__name__}"
            )
        agents = self.agents
        if len(actions) != len(agents) or any(a not in actions for a in agents):
            self._explain_action_keys(actions)
        if not agents:
            return {}, {}, {}, {}, {}
        index = [self._index[a] for a in agents]
        accelerations = np.zeros((self.world.n_agents, 2))
        accelerations[index] = self.world.accelerations(
            [actions[a] for a in agents], agents, self.action_spaces[agents[0]]
        )
        rewards, exited = self.world.step(accelerations, self.np_random)
        self.num_cycles += 1
        truncate = self.num_cycles >= self.max_cycles
        observations = self.world.observations()
        self.agents = [a for a, i in zip(agents, index, strict=True) if not (exited[i] or truncate)]
        self._render_human_step()
        return (
            {a: observations[i] for a, i in zip(agents, index, strict=True)},
            {a: float(rewards[i]) for a, i in zip(agents, index, strict=True)},
            {a: bool(exited[i]) for a, i in zip(agents, index, strict=True)},
            dict.fromkeys(agents, truncate),
            {a: {} for a in agents},
        )

    def _explain_action_keys(self, actions: dict) -> None:
        for agent in actions:
            if agent not in self.agents:
                state = "is done (terminated or truncated)" if agent in self._index else "is unknown"
                raise ValueError(
                    f"got an action for agent {agent!r}, which {state}; agents in play: {self.agents}"
                )
        missing = [a for a in self.agents if a not in actions]
        raise ValueError(f"missing action for agent {missing[0]!r}; every agent in {self.agents} must act")


def parallel_and_aec(
    raw_env: type[ParticleAECEnv],
) -> tuple[type[ParticleParallelEnv], Callable[..., AECEnv]]:
    """A scenario module's ``parallel_env`` class and ``env`` function, made from its ``raw_env``
    (PettingZoo's module convention: ``env``, ``raw_env`` and ``parallel_env`` side by side).

    ``parallel_env`` is a module-level class of the scenario's module (so it pickles by name);
    ``env(**kwargs)`` is ``raw_env(**kwargs)`` inside PettingZoo's ``OrderEnforcingWrapper``.
    """
    name, module = raw_env.scenario.name, raw_env.__module__
    parallel = type(
        "parallel_env",
        (ParticleParallelEnv,),
        {
            "__module__": module,
            "__doc__": f"The parallel API of ``{name}``: the same environment as :class:`raw_env`, documented there.",
            "scenario": raw_env.scenario,
        },
    )

    def env(**kwargs: Any) -> AECEnv:
        return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))

    env.__module__ = module
    env.__doc__ = (
        f"The AEC API of ``{name}`` (:class:`raw_env`), wrapped in PettingZoo's ``OrderEnforcingWrapper``."
    )
    return parallel, env
