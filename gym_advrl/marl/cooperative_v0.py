"""Cooperative particles: the team gathers at the origin while keeping close together.

PettingZoo module style::

    from gym_advrl.marl import cooperative_v0

    env = cooperative_v0.env(n_agents=3)                   # AEC API
    parallel_env = cooperative_v0.parallel_env(n_agents=3)  # parallel API
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from gym_advrl.marl._envs import ParticleAECEnv, ParticleParallelEnv, env_docstring
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


def _scenario_rewards(positions: np.ndarray, in_play: np.ndarray, teams: np.ndarray) -> np.ndarray:
    # A module-level function (not a lambda) so that the scenario, and a running env, pickle.
    return rewards(positions, in_play)


SCENARIO = Scenario(
    name="cooperative_v0",
    team_names=("agent",),
    min_agents=1,
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
        "``n_agents`` particles share one team reward for gathering at the origin while staying\n"
        "    close to each other."
    ),
    observation_note="",
    rewards=(
        "Every agent in play receives the same team reward\n"
        "    ``mean_i (-|p_i| - 0.05 sum_j |p_i - p_j|)`` (means and sums over the agents in play)."
    ),
    agents="``agent_0 .. agent_{n-1}``",
)


def env(**kwargs: Any) -> AECEnv:
    """The AEC environment, wrapped in PettingZoo's ``OrderEnforcingWrapper``."""
    return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))
