"""The particle world shared by ``cooperative_v0``, ``competitive_v0`` and ``mixed_v0``.

Every agent is a point mass in the plane. One call to :meth:`ParticleWorld.step` moves all of
them at once with numpy (no Python loop per agent)::

    vel <- 0.9 * (vel + 0.1 * a)        # accelerate, then damp
    pos <- pos + 0.1 * vel + N(0, noise_std^2)

An agent whose distance to the origin exceeds ``arena_radius`` has left the arena: it is out of
play for the rest of the episode (terminated), its particle stays frozen where it left and it no
longer counts in anybody's reward. Observations for all agents are computed in one vectorized
expression from the positions. A scenario (one module per environment) only supplies the agent
names, the team of each agent and a batched reward function.

## What the three environments share

Each module's ``raw_env`` documents what is its own (agents, observations, rewards and the valid
``n_agents``); the rest is common to the three and described here once.

* **Actions**, one per agent. ``continuous_actions=True`` (default): ``Box(-1.0, 1.0, (2,),
  float32)``, an acceleration; finite values outside the box are clipped.
  ``continuous_actions=False``: ``Discrete(5)``: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (MPE's order). A
  wrong shape, NaN/inf, a non-integer or out-of-range discrete action, or (parallel API) an action
  for an unknown or done agent raises ``ValueError`` naming the agent.
* **Observations** are ``Box(float32)``: own position and velocity first, then the positions of
  the other agents relative to its own. Positions are clipped to the square
  ``[-(arena_radius + 1), arena_radius + 1]^2`` (velocity components stay within ``+-1``); an
  agent that is out of play stays frozen where it left the arena and is still seen there. ``state()``
  returns all positions, all velocities and the in-play flags (``state_space``, shape
  ``(5 n_agents,)``).
* **Rewards** are computed on the positions after the move, over the agents in play at the start
  of the step (an agent leaving the arena still receives the reward of the step it leaves in).
  Each module's batched ``rewards(positions, in_play)`` computes them for any positions.
* **Start**: positions uniform in ``[-1, 1]^2``, velocities zero.
* **Episode end**: an agent farther than ``arena_radius`` from the origin is terminated
  (sticky: it leaves ``agents`` and never acts again). Every agent is truncated after
  ``max_cycles`` steps.
* **Arguments**: ``n_agents`` (first, in each module's table), then the shared ones in the table
  below. Invalid values (and unknown arguments) raise ``ValueError`` naming the argument.
  ``reset(seed=..., options=...)``: ``options`` is accepted for API compatibility and unused.
  ``env.unwrapped.world.set_state(positions, velocities)`` places the agents by hand.
* **Teams**: ``env.teams`` maps every agent to its team (its name prefix: ``"agent"``, or
  ``"red"`` / ``"blue"`` in ``mixed_v0``), for per-team policies.
* **Copies**: ``copy.deepcopy(env)``, ``pickle`` and ``cloudpickle`` copy a running env with its
  state (positions, agents still in play, cycle count, random generator): the copy continues the
  episode identically. The constructor arguments travel too (``EzPickle``), so the copy is built,
  and checked, as the original was.
* **Version history**: v0, initial version. Later within v0: ``n_agents``, ``noise_std`` and
  ``arena_radius`` bounded, boolean discrete actions rejected, copies carry the running state.

| Argument             | Default | Valid values               | Meaning                                           |
|----------------------|---------|----------------------------|---------------------------------------------------|
| `continuous_actions` | True    | True or False              | `Box` actions if True, else `Discrete(5)`         |
| `max_cycles`         | 200     | integer >= 1               | steps before every agent is truncated             |
| `render_mode`        | None    | None, "rgb_array", "human" | `"rgb_array"`: numpy, 400x400; `"human"`: pygame  |
| `noise_std`          | 0.02    | float in [0, 100]          | standard deviation of the position noise per step |
| `arena_radius`       | 5.0     | float in (sqrt(2), 1e4]    | agents farther from the origin are out of play    |
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from gym_advrl.utils.canvas import Canvas
from gym_advrl.utils.validation import box_action, check_choice, check_float, check_int, discrete_action

#: Velocity update ``vel <- DAMPING * (vel + ACCELERATION * action)``.
ACCELERATION = 0.1
DAMPING = 0.9
#: Position update ``pos <- pos + TIMESTEP * vel``.
TIMESTEP = 0.1
#: Discrete(5) actions as unit accelerations: no-op, -x, +x, -y, +y (MPE's order).
DISCRETE_MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
#: Positions are kept in the square ``[-(arena_radius + MARGIN), arena_radius + MARGIN]^2``.
#: An agent is out of play once it is beyond ``arena_radius``; one step moves it by at most
#: ``0.1 * 0.9 * sqrt(2)`` plus noise, so the clip only bounds the frozen exit position.
MARGIN = 1.0
#: Bound on every velocity component: ``|v| <= 0.9 (|v| + 0.1)`` keeps ``|v| <= 0.9`` from rest.
MAX_SPEED = 1.0
#: Distances to the resource that differ by less than this are a tie.
TIE_TOLERANCE = 1e-9
#: Largest ``n_agents``: observations and pairwise distances grow with its square.
MAX_AGENTS = 100
#: Largest ``noise_std`` and ``arena_radius`` (positions are clipped to the arena anyway; the
#: bounds keep the float32 observation bounds finite and meaningful).
MAX_NOISE_STD = 100.0
MAX_ARENA_RADIUS = 1e4

#: ``(positions (..., n, 2), in_play (..., n)[, teams (n,)]) -> (..., n)`` rewards.
RewardFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Scenario:
    """What distinguishes one particle environment from another.

    Attributes:
        name: ``metadata["name"]`` of the environment, e.g. ``"cooperative_v0"``.
        team_names: name prefix of each team's agents; one team means no teams.
        min_agents: smallest valid ``n_agents``.
        reward_fn: ``(positions (..., n, 2), in_play (..., n)) -> (..., n)`` rewards; with two
            teams it also receives ``teams (n,)``. The module's public ``rewards`` function.
    """

    name: str
    team_names: tuple[str, ...]
    min_agents: int
    reward_fn: RewardFn

    def team_sizes(self, n_agents: int) -> tuple[int, ...]:
        """Sizes ``ceil(n/2), floor(n/2)`` for two teams; ``(n,)`` for one."""
        if len(self.team_names) == 1:
            return (n_agents,)
        return (math.ceil(n_agents / 2), n_agents // 2)

    def rewards(self, positions: np.ndarray, in_play: np.ndarray, teams: np.ndarray) -> np.ndarray:
        """``reward_fn`` of the positions, with the teams where there are several."""
        if len(self.team_names) == 1:
            return self.reward_fn(positions, in_play)
        return self.reward_fn(positions, in_play, teams)

    def teams(self, n_agents: int) -> np.ndarray:
        return np.repeat(np.arange(len(self.team_names)), self.team_sizes(n_agents))

    def agent_names(self, n_agents: int) -> list[str]:
        return [
            f"{prefix}_{i}"
            for prefix, size in zip(self.team_names, self.team_sizes(n_agents), strict=True)
            for i in range(size)
        ]


def distances_to_origin(positions: np.ndarray) -> np.ndarray:
    """``(..., n, 2) -> (..., n)`` Euclidean norms (``hypot``: one ufunc call, no overflow)."""
    return np.hypot(positions[..., 0], positions[..., 1])


def pairwise_distances(positions: np.ndarray) -> np.ndarray:
    """``(..., n, 2) -> (..., n, n)`` Euclidean distances between all pairs of agents."""
    x, y = positions[..., 0], positions[..., 1]
    return np.hypot(x[..., :, None] - x[..., None, :], y[..., :, None] - y[..., None, :])


def nearest_to_origin(positions: np.ndarray, in_play: np.ndarray) -> np.ndarray:
    """Mask ``(..., n)`` of the in-play agents nearest to the origin (all of them on a tie)."""
    distance = np.where(in_play, distances_to_origin(positions), np.inf)
    return in_play & (distance <= distance.min(axis=-1, keepdims=True) + TIE_TOLERANCE)


def broadcast_inputs(positions: np.ndarray, in_play: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Check ``positions (..., n, 2)`` and broadcast ``in_play`` (default: everybody) to ``(..., n)``."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim < 2 or positions.shape[-1] != 2:
        raise ValueError(f"positions must have shape (..., n_agents, 2), got {positions.shape}")
    if in_play is None:
        return positions, np.ones(positions.shape[:-1], dtype=bool)
    in_play = np.asarray(in_play, dtype=bool)
    if in_play.shape == positions.shape[:-1]:
        return positions, in_play
    try:
        return positions, np.broadcast_to(in_play, positions.shape[:-1])
    except ValueError as err:
        raise ValueError(
            f"in_play must broadcast to {positions.shape[:-1]}, got shape {in_play.shape}"
        ) from err


class ParticleWorld:
    """Positions, velocities and in-play flags of ``n_agents`` particles, stepped together.

    Args:
        scenario: the environment's names, teams and reward.
        n_agents: number of agents, from ``scenario.min_agents`` to 100.
        noise_std: standard deviation of the Gaussian position noise per step, in ``[0, 100]``.
        arena_radius: an agent farther than this from the origin is out of play, in
            ``(sqrt 2, 1e4]`` (so that every start position, uniform in ``[-1, 1]^2``, is inside).
    """

    def __init__(self, scenario: Scenario, n_agents: int, noise_std: float, arena_radius: float) -> None:
        self.scenario = scenario
        self.n_agents = check_int("n_agents", n_agents, scenario.min_agents, MAX_AGENTS)
        self.noise_std = check_float("noise_std", noise_std, 0.0, MAX_NOISE_STD)
        self.arena_radius = check_float(
            "arena_radius", arena_radius, math.sqrt(2.0), MAX_ARENA_RADIUS, low_inclusive=False
        )
        self.names = scenario.agent_names(self.n_agents)
        self.teams = scenario.teams(self.n_agents)
        self.has_teams = len(scenario.team_names) > 1
        n = self.n_agents
        # Row i lists the other agents as agent i sees them: team-mates first, then opponents,
        # each in index order (with a single team this is simply everyone but i).
        order = np.argsort(self.teams[None, :] != self.teams[:, None], axis=1, kind="stable")
        self.others = order[order != np.arange(n)[:, None]].reshape(n, n - 1)
        self.positions = np.zeros((n, 2))
        self.velocities = np.zeros((n, 2))
        self.in_play = np.ones(n, dtype=bool)
        self.bound = self.arena_radius + MARGIN
        self._observations: np.ndarray | None = None

    # ------------------------------------------------------------------ spaces
    @property
    def obs_dim(self) -> int:
        return 4 + int(self.has_teams) + 2 * (self.n_agents - 1)

    def observation_space(self) -> spaces.Box:
        """Own position (2), own velocity (2), [own team (1)], others' relative positions (2 each)."""
        team = [1.0] if self.has_teams else []
        high = np.array(
            [self.bound] * 2 + [MAX_SPEED] * 2 + team + [2 * self.bound] * (2 * (self.n_agents - 1))
        )
        low = -high
        if self.has_teams:
            low[4] = 0.0
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def state_space(self) -> spaces.Box:
        """All positions, all velocities and the in-play flags (for centralized critics)."""
        n = self.n_agents
        high = np.concatenate([np.full(2 * n, self.bound), np.full(2 * n, MAX_SPEED), np.ones(n)])
        low = np.concatenate([-high[: 4 * n], np.zeros(n)])
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    # ------------------------------------------------------------------ dynamics
    def reset(self, rng: np.random.Generator) -> None:
        self.positions = rng.uniform(-1.0, 1.0, size=(self.n_agents, 2))
        self.velocities = np.zeros((self.n_agents, 2))
        self.in_play = np.ones(self.n_agents, dtype=bool)
        self._observations = None

    def step(self, accelerations: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Move the in-play agents by ``accelerations (n, 2)`` (rows of the others are ignored).

        Returns ``(rewards (n,), exited (n,))``: the rewards of the agents that were in play at
        the start of the step (0 for the others) and which of them left the arena in this step.
        """
        active = self.in_play
        noise = rng.normal(0.0, self.noise_std, size=self.positions.shape) if self.noise_std > 0 else 0.0
        velocities = DAMPING * (self.velocities + ACCELERATION * accelerations)
        positions = np.minimum(
            np.maximum(self.positions + TIMESTEP * velocities + noise, -self.bound), self.bound
        )
        self.positions = np.where(active[:, None], positions, self.positions)
        exited = active & (distances_to_origin(self.positions) > self.arena_radius)
        self.velocities = np.where((active & ~exited)[:, None], velocities, 0.0)
        rewards = self.scenario.rewards(self.positions, active, self.teams)
        self.in_play = active & ~exited
        self._observations = None
        return rewards, exited

    def set_state(self, positions: np.ndarray, velocities: np.ndarray | None = None) -> None:
        """Place the agents by hand (all in play); for tests, demonstrations and custom starts."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (self.n_agents, 2) or not np.all(np.isfinite(positions)):
            raise ValueError(
                f"positions must be a finite array of shape {(self.n_agents, 2)}, got {positions.shape}"
            )
        if np.any(distances_to_origin(positions) > self.arena_radius):
            raise ValueError(f"positions must lie inside the arena of radius {self.arena_radius}")
        velocities = (
            np.zeros_like(positions) if velocities is None else np.asarray(velocities, dtype=np.float64)
        )
        if velocities.shape != (self.n_agents, 2) or np.any(np.abs(velocities) > 0.9):
            raise ValueError(f"velocities must have shape {(self.n_agents, 2)} and components in [-0.9, 0.9]")
        self.positions, self.velocities = positions.copy(), velocities.copy()
        self.in_play = np.ones(self.n_agents, dtype=bool)
        self._observations = None

    # ------------------------------------------------------------------ observations
    def observations(self) -> np.ndarray:
        """``(n, obs_dim)`` float32: one row per agent, all computed at once (cached until the next move)."""
        if self._observations is None:
            relative = self.positions[self.others] - self.positions[:, None, :]
            parts = [self.positions, self.velocities]
            if self.has_teams:
                parts.append(self.teams[:, None].astype(np.float64))
            parts.append(relative.reshape(self.n_agents, -1))
            self._observations = np.concatenate(parts, axis=1).astype(np.float32)
        return self._observations

    def state(self) -> np.ndarray:
        return np.concatenate([self.positions.ravel(), self.velocities.ravel(), self.in_play]).astype(
            np.float32
        )

    # ------------------------------------------------------------------ actions
    def accelerations(self, actions: list, names: list[str], action_space: spaces.Space) -> np.ndarray:
        """Validate the actions of the agents ``names``; return their ``(len(names), 2)`` accelerations.

        Continuous actions (``Box(-1, 1, (2,))``) must be real numbers of shape ``(2,)`` and
        finite; finite values outside the box are clipped. Discrete actions must be integers in
        ``[0, 4]`` (not booleans). Any violation raises ``ValueError`` naming the agent.
        """
        try:
            batch = np.asarray(actions)
        except (TypeError, ValueError):  # ragged: some agent's action has the wrong shape
            batch = np.empty(0)
        if isinstance(action_space, spaces.Box):
            # Fast path: one finite (k, 2) array for all agents; otherwise check each agent.
            if batch.shape == (len(names), 2) and batch.dtype.kind in "iuf" and np.all(np.isfinite(batch)):
                return np.minimum(np.maximum(batch.astype(np.float64), -1.0), 1.0)
            return np.array(
                [_per_agent(box_action, a, action_space, n) for a, n in zip(actions, names, strict=True)]
            ).reshape(-1, 2)
        # numpy turns ``[True, 2]`` into integers, so the fast path also checks each element's type.
        if (
            batch.shape == (len(names),)
            and batch.dtype.kind in "iu"
            and np.all((batch >= 0) & (batch <= 4))
            and all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in actions)
        ):
            return DISCRETE_MOVES[batch]
        return DISCRETE_MOVES[
            [_per_agent(discrete_action, a, action_space, n) for a, n in zip(actions, names, strict=True)]
        ].reshape(-1, 2)

    # ------------------------------------------------------------------ rendering
    def draw(self, size: int = 400) -> np.ndarray:
        """An RGB frame: the arena, the origin and every agent (team colours; grey once out of play)."""
        half = self.arena_radius + 0.5
        canvas = Canvas(size, size, (-half, half), (-half, half), background=(40, 40, 40))
        canvas.fill_circle(0.0, 0.0, self.arena_radius, (245, 245, 245))
        canvas.fill_circle(0.0, 0.0, 0.12, (230, 180, 30))
        for i in range(self.n_agents):
            x, y = self.positions[i]
            if not self.in_play[i]:
                color = (150, 150, 150)
            elif self.has_teams:
                color = TEAM_COLORS[self.teams[i] % len(TEAM_COLORS)]
            else:
                color = AGENT_COLORS[i % len(AGENT_COLORS)]
            canvas.fill_circle(float(x), float(y), 0.2, color)
        return canvas.image


TEAM_COLORS = ((210, 60, 60), (50, 90, 210))
AGENT_COLORS = ((210, 60, 60), (50, 90, 210), (40, 160, 70), (150, 70, 190), (230, 120, 20), (20, 160, 170))


def _per_agent(check: Callable, action: object, space: spaces.Space, name: str) -> object:
    try:
        return check(action, space)
    except ValueError as err:
        raise ValueError(f"invalid action for agent {name!r}: {err}") from err


def check_continuous(continuous_actions: object) -> bool:
    return bool(check_choice("continuous_actions", continuous_actions, (True, False)))
