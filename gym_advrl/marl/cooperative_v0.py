"""Cooperative particles: the team gathers at the origin while keeping close together.

PettingZoo module style::

    from gym_advrl.marl import cooperative_v0

    env = cooperative_v0.env(n_agents=3)                   # AEC API
    parallel_env = cooperative_v0.parallel_env(n_agents=3)  # parallel API

The environment (spaces, rewards, arguments) is documented in :class:`raw_env` below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from gym_advrl.marl._envs import ParticleAECEnv, ParticleParallelEnv
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

    Physics (all agents at once): ``vel <- 0.9 (vel + 0.1 a)``, then
    ``pos <- pos + 0.1 vel + N(0, noise_std^2)``.

    ## Action Space

    One per agent. ``continuous_actions=True`` (default): ``Box(-1.0, 1.0, (2,), float32)``, an
    acceleration; finite values outside the box are clipped. ``continuous_actions=False``:
    ``Discrete(5)``: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (MPE's order). A wrong shape, NaN/inf, a
    non-integer or out-of-range discrete action, or (parallel API) an action for an unknown or
    done agent raises ``ValueError`` naming the agent.

    ## Observation Space

    One ``Box(float32)`` per agent, of shape ``(4 + 2 (n_agents - 1),)``: shape ``(8,)`` with the
    default 3 agents.

    | Index          | Observation                                                       | Bounds                   |
    |----------------|-------------------------------------------------------------------|--------------------------|
    | 0, 1           | own position x, y                                                 | `+-(arena_radius + 1)`   |
    | 2, 3           | own velocity x, y                                                 | `+-1`                    |
    | 4 + 2k, 5 + 2k | position of the k-th other agent (in index order) relative to own | `+-2 (arena_radius + 1)` |

    Positions are clipped to the square ``[-(arena_radius + 1), arena_radius + 1]^2``. An agent
    that is out of play stays frozen where it left the arena and is still seen there.
    ``state()`` returns all positions, all velocities and the in-play flags (``state_space``,
    shape ``(5 n_agents,)``).

    ## Rewards

    Every agent in play receives the same team reward
    ``mean_i (-|p_i| - 0.05 sum_j |p_i - p_j|)`` (means and sums over the agents in play).
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
    | `n_agents`           | 3       | integer in [1, 100]        | number of agents                                  |
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
    """The parallel API of ``cooperative_v0``: the same environment as :class:`raw_env`, documented there."""

    scenario = SCENARIO
    metadata = {**ParticleParallelEnv.metadata, "name": SCENARIO.name}


def env(**kwargs: Any) -> AECEnv:
    """The AEC environment, wrapped in PettingZoo's ``OrderEnforcingWrapper``."""
    return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))
