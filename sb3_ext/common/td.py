"""One-step temporal-difference targets, written once for every sb3_ext value learner.

:func:`bootstrapped_target` is the common form ``r + gamma (1 - d) V(s')``, where ``V(s')`` is
whatever the algorithm bootstraps from (DQN's max over target Q-values, QR-DQN's target
quantiles, SAC's soft twin-critic value, TD3's clipped double-Q value). :func:`q_learning_target`
is DQN's (Mnih et al. 2015): ``r + gamma (1 - d) max_a' Q_target(s', a')``, or with the online
network given, Double DQN's (van Hasselt et al. 2016):
``r + gamma (1 - d) Q_target(s', argmax_a' Q(s', a'))``.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn


def bootstrapped_target(
    rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float, next_values: th.Tensor
) -> th.Tensor:
    """``r + gamma (1 - d) V(s')``: a terminal transition (``d = 1``) does not bootstrap.

    :param rewards: ``(batch, 1)`` rewards (for an n-step transition, its discounted sum)
    :param dones: ``(batch, 1)`` terminations (time-limit truncations are not: SB3 stores those as 0)
    :param discounts: ``gamma``, or one discount per transition, ``(batch, 1)``
    :param next_values: ``(batch, 1)`` values of the next states, or ``(batch, k)`` (e.g. quantiles)
    """
    return rewards + (1 - dones) * discounts * next_values


@th.no_grad()
def q_learning_target(
    replay_data: ReplayBufferSamples,
    q_net_target: nn.Module,
    gamma: float,
    next_observations: th.Tensor | None = None,
    q_net: nn.Module | None = None,
) -> th.Tensor:
    """DQN's target ``r + gamma (1 - d) max_a' Q_target(s', a')`` of a replayed batch, ``(batch, 1)``.

    :param replay_data: the batch; its ``discounts``, where present (SB3's n-step replay, Dyna's
        imagined rollouts), replace ``gamma``
    :param q_net_target: the target network ``Q_target``
    :param gamma: the discount factor
    :param next_observations: ``s'`` if not the batch's own (e.g. augmented)
    :param q_net: the online network: when given, it picks ``a'`` and ``Q_target`` evaluates it
        (Double DQN)
    """
    next_obs = replay_data.next_observations if next_observations is None else next_observations
    next_q_values = q_net_target(next_obs)
    if q_net is None:
        next_values = next_q_values.max(dim=1).values
    else:
        next_actions = q_net(next_obs).argmax(dim=1, keepdim=True)
        next_values = th.gather(next_q_values, dim=1, index=next_actions)
    discounts = replay_data.discounts if replay_data.discounts is not None else gamma
    return bootstrapped_target(replay_data.rewards, replay_data.dones, discounts, next_values.reshape(-1, 1))
