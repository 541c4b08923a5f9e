"""Competitive particles: the agent nearest to a resource at the origin wins the step.

PettingZoo module style::

    from gym_advrl.marl import competitive_v0

    env = competitive_v0.env(n_agents=3)                   # AEC API
    parallel_env = competitive_v0.parallel_env(n_agents=3)  # parallel API

The environment (spaces, rewards, arguments) is documented in :class:`raw_env` below.
"""

from __future__ import annotations

import numpy as np

from gym_advrl.marl._envs import ParticleAECEnv, parallel_and_aec
from gym_advrl.marl._particles import Scenario, broadcast_inputs, nearest_to_origin

#: Reward of the agent nearest to the resource (split equally on a tie) and of every other agent.
WIN_REWARD = 1.0
LOSE_REWARD = -0.1


def rewards(positions: np.ndarray, in_play: np.ndarray | None = None) -> np.ndarray:
    """Per-agent rewards (0 for agents out of play), batched over leading dims.

    The in-play agent nearest to the origin gets ``+1``; ``k`` agents tied for nearest (distances
    within ``1e-9``) get ``1/k`` each; every other in-play agent gets ``-0.1``.

    Args:
        positions: ``(..., n_agents, 2)`` positions.
        in_play: ``(..., n_agents)`` booleans, default all True.

    Returns:
        ``(..., n_agents)`` rewards.
    """
    positions, in_play = broadcast_inputs(positions, in_play)
    winners = nearest_to_origin(positions, in_play)
    n_winners = np.maximum(winners.sum(-1, keepdims=True), 1)
    return np.where(winners, WIN_REWARD / n_winners, np.where(in_play, LOSE_REWARD, 0.0))


SCENARIO = Scenario(
    name="competitive_v0",
    team_names=("agent",),
    min_agents=2,
    reward_fn=rewards,
)


class raw_env(ParticleAECEnv):  # noqa: N801 - PettingZoo's module convention
    """
    ## Description

    ``n_agents`` (>= 2) particles compete for a resource at the origin: each step, the agent
    nearest to it wins. Agents are named ``agent_0 .. agent_{n-1}``.

    Physics, actions, clipping, start, episode end, the other arguments, copies and version
    history are common to the three particle worlds and described once, under "What the three
    environments share" (the module docstring of ``gym_advrl.marl._particles``).

    ## Action Space

    One per agent: ``Box(-1.0, 1.0, (2,), float32)`` accelerations (``continuous_actions=True``,
    the default) or ``Discrete(5)`` moves.

    ## Observation Space

    Shape ``(4 + 2 (n_agents - 1),)`` as in ``cooperative_v0``: shape ``(8,)`` with the
    default 3 agents. The global state has shape ``(5 n_agents,)``.

    ## Rewards

    The in-play agent nearest to the origin gets +1 and every other in-play agent -0.1.
    Ties (distances within 1e-9) split the +1: each of ``k`` tied agents gets ``1/k``.

    ## Arguments

    | Argument             | Default | Valid values               | Meaning                                           |
    |----------------------|---------|----------------------------|---------------------------------------------------|
    | `n_agents`           | 3       | integer in [2, 100]        | number of agents                                  |

    The other arguments are the shared ones.
    """

    scenario = SCENARIO


parallel_env, env = parallel_and_aec(raw_env)
