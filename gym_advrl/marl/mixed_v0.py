"""Mixed cooperation and competition: two teams race for a resource at the origin.

PettingZoo module style::

    from gym_advrl.marl import mixed_v0

    env = mixed_v0.env(n_agents=5)                   # AEC API: red_0..red_2 vs blue_0, blue_1
    parallel_env = mixed_v0.parallel_env(n_agents=5)  # parallel API

The environment (spaces, rewards, arguments) is documented in :class:`raw_env` below.
"""

from __future__ import annotations

import numpy as np

from gym_advrl.marl._envs import ParticleAECEnv, parallel_and_aec
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

    Physics, actions, clipping, start, episode end, the other arguments, copies and version
    history are common to the three particle worlds and described once, under "What the three
    environments share" (the module docstring of ``gym_advrl.marl._particles``).

    ## Action Space

    One per agent: ``Box(-1.0, 1.0, (2,), float32)`` accelerations (``continuous_actions=True``,
    the default) or ``Discrete(5)`` moves.

    ## Observation Space

    Shape ``(5 + 2 (n_agents - 1),)``, shape ``(9,)`` with the default 3 agents: own position
    (0, 1), own velocity (2, 3), own team (4: 0 red, 1 blue), then the position of each other
    agent relative to its own (5 + 2k, 6 + 2k), team-mates first, then opponents, each in index
    order. The global state has shape ``(5 n_agents,)``.

    ## Rewards

    Every member of the team of the in-play agent nearest to the origin gets +1, every member
    of the other team -0.1; if agents of both teams tie (within 1e-9), each team gets the
    fraction ``s`` of tied agents that are its own: ``s * 1 + (1 - s) * (-0.1)``. Each agent
    also pays ``0.05 * sum of its distances to its in-play team-mates`` (cohesion).

    ## Arguments

    | Argument             | Default | Valid values               | Meaning                                           |
    |----------------------|---------|----------------------------|---------------------------------------------------|
    | `n_agents`           | 3       | integer in [2, 100]        | number of agents                                  |

    The other arguments are the shared ones.
    """

    scenario = SCENARIO


parallel_env, env = parallel_and_aec(raw_env)
