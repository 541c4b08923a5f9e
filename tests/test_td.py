"""The one-step TD targets shared by the value learners (sb3_ext.common.td)."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn

from sb3_ext.common.td import bootstrapped_target, q_learning_target


class FixedQ(nn.Module):
    """Q-values read from a table by the first observation feature (a state index)."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = th.tensor(table)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.table[obs[:, 0].long()]


def batch(discounts: th.Tensor | None = None) -> ReplayBufferSamples:
    return ReplayBufferSamples(
        observations=th.zeros(3, 1),
        actions=th.zeros(3, 1),
        next_observations=th.tensor([[0.0], [1.0], [2.0]]),
        dones=th.tensor([[0.0], [1.0], [0.0]]),
        rewards=th.tensor([[1.0], [2.0], [-1.0]]),
        discounts=discounts,
    )


def test_a_terminal_transition_does_not_bootstrap():
    target = bootstrapped_target(
        th.tensor([[1.0], [1.0]]), th.tensor([[0.0], [1.0]]), 0.5, th.tensor([[4.0], [4.0]])
    )
    th.testing.assert_close(target, th.tensor([[3.0], [1.0]]))


def test_dqn_target_maxes_the_target_network_and_double_q_evaluates_the_online_argmax():
    q_target = FixedQ([[1.0, 5.0], [7.0, 0.0], [2.0, 3.0]])
    online = FixedQ([[9.0, 0.0], [0.0, 9.0], [9.0, 0.0]])
    # max_a' Q_target(s', a') = 5, (terminal), 3
    th.testing.assert_close(
        q_learning_target(batch(), q_target, 0.9), th.tensor([[1 + 0.9 * 5], [2.0], [-1 + 0.9 * 3]])
    )
    # a' = argmax_a Q(s', a) = 0, 1, 0 -> Q_target = 1, (terminal), 2
    double = q_learning_target(batch(), q_target, 0.9, q_net=online)
    th.testing.assert_close(double, th.tensor([[1 + 0.9 * 1], [2.0], [-1 + 0.9 * 2]]))


def test_per_transition_discounts_replace_gamma_and_next_observations_can_be_given():
    q_target = FixedQ([[1.0, 5.0], [7.0, 0.0], [2.0, 3.0]])
    discounts = th.tensor([[0.5], [0.5], [0.25]])
    th.testing.assert_close(
        q_learning_target(batch(discounts), q_target, 0.9), th.tensor([[1 + 0.5 * 5], [2.0], [-1 + 0.25 * 3]])
    )
    shifted = th.tensor([[2.0], [2.0], [0.0]])  # e.g. augmented next observations
    th.testing.assert_close(
        q_learning_target(batch(), q_target, 0.9, next_observations=shifted),
        th.tensor([[1 + 0.9 * 3], [2.0], [-1 + 0.9 * 5]]),
    )
