"""Cooperative particles: the team gathers at the origin while keeping close together.

PettingZoo module style::

    from gym_advrl.marl import cooperative_v0

    env = cooperative_v0.env(n_agents=3)                   # AEC API
    parallel_env = cooperative_v0.parallel_env(n_agents=3)  # parallel API

The environment (spaces, rewards, arguments) is documented in :class:`raw_env` below.
"""

from __future__ import annotations

import numpy as np

from gym_advrl.marl._envs import ParticleAECEnv, parallel_and_aec
from gym_advrl.marl._particles import Scenario, broadcast_inputs, distances_to_origin, pairwise_distances

#: Weight of the sum of distances to the other agents.
COHESION = 0.05


def rewards(positions: np.ndarray, in_play: np.ndarray | None = None) -> np.ndarray:
    """Shared team reward of every in-play agent (0 for the others), batched over leading dims.

    ``r = mean_i (-|p_i| - 0.05 sum_j |p_i - p_j|)`` over the in-play agents ``i, j``.

    Args:
        positions: ``(..., n_agents, 2)`` positions.
        in_play: ``(..., n_agents)`` booleans, default all True.

    Returns:
        ``(..., n_agents)`` rewards.
    """
    positions, in_play = broadcast_inputs(positions, in_play)
    weight = in_play.astype(np.float64)
    pair_sums = (pairwise_distances(positions) * weight[..., None, :]).sum(-1)
    per_agent = -distances_to_origin(positions) - COHESION * pair_sums
    team = (per_agent * weight).sum(-1) / np.maximum(weight.sum(-1), 1.0)
    return np.where(in_play, team[..., None], 0.0)


SCENARIO = Scenario(
    name="cooperative_v0",
    team_names=("agent",),
    min_agents=1,
    reward_fn=rewards,
)


class raw_env(ParticleAECEnv):  # noqa: N801 - PettingZoo's module convention
    """
    ## Description

    ``n_agents`` particles share one team reward for gathering at the origin while staying
    close to each other. Agents are named ``agent_0 .. agent_{n-1}``.

    Physics, actions, clipping, start, episode end, the other arguments, copies and version
    history are common to the three particle worlds and described once, under "What the three
    environments share" (the module docstring of ``gym_advrl.marl._particles``).

    ## Action Space

    One per agent: ``Box(-1.0, 1.0, (2,), float32)`` accelerations (``continuous_actions=True``,
    the default) or ``Discrete(5)`` moves.

    ## Observation Space

    Shape ``(4 + 2 (n_agents - 1),)``, shape ``(8,)`` with the default 3 agents: own position
    (0, 1), own velocity (2, 3), then the position of each other agent, in index order, relative
    to its own (4 + 2k, 5 + 2k). The global state has shape ``(5 n_agents,)``.

    ## Rewards

    Every agent in play receives the same team reward
    ``mean_i (-|p_i| - 0.05 sum_j |p_i - p_j|)`` (means and sums over the agents in play).

    ## Arguments

    | Argument             | Default | Valid values               | Meaning                                           |
    |----------------------|---------|----------------------------|---------------------------------------------------|
    | `n_agents`           | 3       | integer in [1, 100]        | number of agents                                  |

    The other arguments are the shared ones.
    """

    scenario = SCENARIO


parallel_env, env = parallel_and_aec(raw_env)
