"""Mixed cooperation and competition: two teams race for a resource at the origin.

PettingZoo module style::

    from gym_advrl.marl import mixed_v0

    env = mixed_v0.env(n_agents=5)                   # AEC API: red_0..red_2 vs blue_0, blue_1
    parallel_env = mixed_v0.parallel_env(n_agents=5)  # parallel API

The environment (spaces, rewards, arguments) is documented in :class:`raw_env` below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from gym_advrl.marl._envs import ParticleAECEnv, ParticleParallelEnv
from gym_advrl.marl._particles import Scenario, broadcast_inputs, nearest_to_origin, pairwise_distances

#: Reward of each member of the team holding the resource, and of each member of the other team.
WIN_REWARD = 1.0
LOSE_REWARD = -0.1
#: Weight of the sum of distances to in-play team-mates.
COHESION = 0.05


def teams(n_agents: int) -> np.ndarray:
    """Team of each agent: 0 (``red``, ``ceil(n/2)`` agents) then 1 (``blue``, ``floor(n/2)``)."""
    return SCENARIO.teams(n_agents)


def rewards(
    positions: np.ndarray, in_play: np.ndarray | None = None, team: np.ndarray | None = None
) -> np.ndarray:
    """Per-agent rewards (0 for agents out of play), batched over leading dims.

    Let ``W`` be the in-play agents nearest to the origin (ties within ``1e-9``) and ``s_T`` the
    fraction of ``W`` in team ``T``. An in-play agent ``i`` of team ``T`` gets
    ``s_T * 1 + (1 - s_T) * (-0.1) - 0.05 sum_{j in T, in play} |p_i - p_j|``: +1 for every member
    of the team holding the resource, -0.1 for the other team, a tie between teams splits.

    Args:
        positions: ``(..., n_agents, 2)`` positions.
        in_play: ``(..., n_agents)`` booleans, default all True.
        team: ``(n_agents,)`` team ids, default :func:`teams` (ceil/floor split).

    Returns:
        ``(..., n_agents)`` rewards.
    """
    positions, in_play = broadcast_inputs(positions, in_play)
    team = teams(positions.shape[-2]) if team is None else np.asarray(team)
    if team.shape != positions.shape[-2:-1]:
        raise ValueError(f"team must have shape {positions.shape[-2:-1]}, got {team.shape}")
    same_team = (team[:, None] == team[None, :]).astype(np.float64)
    winners = nearest_to_origin(positions, in_play).astype(np.float64)
    # (..., n) @ (n, n): for every agent, how many winners are in its team.
    share = (winners @ same_team) / np.maximum(winners.sum(-1, keepdims=True), 1.0)
    resource = share * WIN_REWARD + (1.0 - share) * LOSE_REWARD
    cohesion = COHESION * (pairwise_distances(positions) * same_team * in_play[..., None, :]).sum(-1)
    return np.where(in_play, resource - cohesion, 0.0)


SCENARIO = Scenario(name="mixed_v0", team_names=("red", "blue"), min_agents=2, reward_fn=rewards)


class raw_env(ParticleAECEnv):  # noqa: N801 - PettingZoo's module convention
    """
    ## Description

    Two teams, red (``ceil(n/2)`` agents) and blue (``floor(n/2)``), race for a resource at
    the origin while each team keeps together. Agents are named
    ``red_0 .. red_{ceil(n/2)-1}`` then ``blue_0 .. blue_{floor(n/2)-1}``.

    Physics (all agents at once): ``vel <- 0.9 (vel + 0.1 a)``, then
    ``pos <- pos + 0.1 vel + N(0, noise_std^2)``.

    ## Action Space

    One per agent. ``continuous_actions=True`` (default): ``Box(-1.0, 1.0, (2,), float32)``, an
    acceleration; finite values outside the box are clipped. ``continuous_actions=False``:
    ``Discrete(5)``: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (MPE's order). A wrong shape, NaN/inf, a
    non-integer or out-of-range discrete action, or (parallel API) an action for an unknown or
    done agent raises ``ValueError`` naming the agent.

    ## Observation Space

    One ``Box(float32)`` per agent, of shape ``(5 + 2 (n_agents - 1),)``: shape ``(9,)`` with the
    default 3 agents.

    | Index          | Observation                                                    | Bounds                   |
    |----------------|----------------------------------------------------------------|--------------------------|
    | 0, 1           | own position x, y                                              | `+-(arena_radius + 1)`   |
    | 2, 3           | own velocity x, y                                              | `+-1`                    |
    | 4              | own team: 0 red, 1 blue                                        | `[0, 1]`                 |
    | 5 + 2k, 6 + 2k | position of the k-th other agent relative to own (order below) | `+-2 (arena_radius + 1)` |

    The other agents are ordered team-mates first, then opponents, each in index order.

    Positions are clipped to the square ``[-(arena_radius + 1), arena_radius + 1]^2``. An agent
    that is out of play stays frozen where it left the arena and is still seen there.
    ``state()`` returns all positions, all velocities and the in-play flags (``state_space``,
    shape ``(5 n_agents,)``).

    ## Rewards

    Every member of the team of the in-play agent nearest to the origin gets +1, every member
    of the other team -0.1; if agents of both teams tie (within 1e-9), each team gets the
    fraction ``s`` of tied agents that are its own: ``s * 1 + (1 - s) * (-0.1)``. Each agent
    also pays ``0.05 * sum of its distances to its in-play team-mates`` (cohesion).
    Rewards are computed on the positions after the move, over the agents in play at the start
    of the step (an agent leaving the arena still receives the reward of the step it leaves in).
    The module's batched ``rewards(positions, in_play)`` computes them for any positions.

    ## Starting State

    Positions uniform in ``[-1, 1]^2``, velocities zero.

    ## Episode End

    An agent farther than ``arena_radius`` from the origin is terminated (sticky: it leaves
    ``agents`` and never acts again). Every agent is truncated after ``max_cycles`` steps.

    ## Arguments

    | Argument             | Default | Valid values               | Meaning                                           |
    |----------------------|---------|----------------------------|---------------------------------------------------|
    | `n_agents`           | 3       | integer in [2, 100]        | number of agents                                  |
    | `continuous_actions` | True    | True or False              | `Box` actions if True, else `Discrete(5)`         |
    | `max_cycles`         | 200     | integer >= 1               | steps before every agent is truncated             |
    | `render_mode`        | None    | None, "rgb_array", "human" | `"rgb_array"`: numpy, 400x400; `"human"`: pygame  |
    | `noise_std`          | 0.02    | float in [0, 100]          | standard deviation of the position noise per step |
    | `arena_radius`       | 5.0     | float in (sqrt(2), 1e4]    | agents farther from the origin are out of play    |

    Invalid values (and unknown arguments) raise ``ValueError`` naming the argument.
    ``reset(seed=..., options=...)``: ``options`` is accepted for API compatibility and unused.
    ``env.unwrapped.world.set_state(positions, velocities)`` places the agents by hand.
    ``copy.deepcopy(env)``, ``pickle`` and ``cloudpickle`` copy a running env with its state
    (positions, agents still in play, cycle count, random generator): the copy continues the
    episode identically. The constructor arguments travel too (``EzPickle``), so the copy is
    built, and checked, as the original was.

    ## Version History

    * v0: initial version. Later within v0: ``n_agents``, ``noise_std`` and ``arena_radius``
      bounded, boolean discrete actions rejected, copies carry the running state.
    """

    scenario = SCENARIO
    metadata = {**ParticleAECEnv.metadata, "name": SCENARIO.name}


class parallel_env(ParticleParallelEnv):  # noqa: N801 - PettingZoo's module convention
    """The parallel API of ``mixed_v0``: the same environment as :class:`raw_env`, documented there."""

    scenario = SCENARIO
    metadata = {**ParticleParallelEnv.metadata, "name": SCENARIO.name}


def env(**kwargs: Any) -> AECEnv:
    """The AEC environment, wrapped in PettingZoo's ``OrderEnforcingWrapper``."""
    return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))
