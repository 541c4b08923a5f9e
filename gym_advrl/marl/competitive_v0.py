"""Competitive particles: the agent nearest to a resource at the origin wins the step.

PettingZoo module style::

    from gym_advrl.marl import competitive_v0

    env = competitive_v0.env(n_agents=3)                   # AEC API
    parallel_env = competitive_v0.parallel_env(n_agents=3)  # parallel API
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from gym_advrl.marl._envs import ParticleAECEnv, ParticleParallelEnv, env_docstring
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


def _scenario_rewards(positions: np.ndarray, in_play: np.ndarray, teams: np.ndarray) -> np.ndarray:
    # A module-level function (not a lambda) so that the scenario, and a running env, pickle.
    return rewards(positions, in_play)


SCENARIO = Scenario(
    name="competitive_v0",
    team_names=("agent",),
    min_agents=2,
    reward_fn=_scenario_rewards,
)


class raw_env(ParticleAECEnv):  # noqa: N801 - PettingZoo's module convention
    scenario = SCENARIO
    metadata = {**ParticleAECEnv.metadata, "name": SCENARIO.name}


class parallel_env(ParticleParallelEnv):  # noqa: N801 - PettingZoo's module convention
    scenario = SCENARIO
    metadata = {**ParticleParallelEnv.metadata, "name": SCENARIO.name}


raw_env.__doc__ = parallel_env.__doc__ = env_docstring(
    description=(
        "``n_agents`` (>= 2) particles compete for a resource at the origin: each step, the agent\n"
        "    nearest to it wins."
    ),
    observation_note="",
    rewards=(
        "The in-play agent nearest to the origin gets +1 and every other in-play agent -0.1.\n"
        "    Ties (distances within 1e-9) split the +1: each of ``k`` tied agents gets ``1/k``."
    ),
    agents="``agent_0 .. agent_{n-1}``",
)


def env(**kwargs: Any) -> AECEnv:
    """The AEC environment, wrapped in PettingZoo's ``OrderEnforcingWrapper``."""
    return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))
