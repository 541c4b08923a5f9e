"""Policies for the Dyna algorithms: a greedy policy over a Q-table for :class:`TabularDynaQ`.

The deep :class:`~sb3_ext.dyna.Dyna` uses Stable-Baselines3's DQN policies unchanged.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule


def check_tabular_spaces(observation_space: spaces.Space, action_space: spaces.Space, name: str) -> None:
    """Raise ``ValueError`` unless both spaces are ``Discrete`` (what a Q-table can index)."""
    if not isinstance(observation_space, spaces.Discrete):
        raise ValueError(
            f"{name} needs a Discrete observation space (a table indexed by state), got {observation_space}; "
            "for grid worlds use obs_mode='index', otherwise use a function-approximation method such as Dyna"
        )
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{name} needs a Discrete action space, got {action_space}")


class TabularQPolicy(BasePolicy):
    """
    Greedy policy over a table of action values ``Q[state, action]``.

    The table is a float64 buffer of the module, so it is saved and restored with the rest of the
    model's parameters by :meth:`~stable_baselines3.common.base_class.BaseAlgorithm.save` /
    ``load``. Ties between maximal actions are broken towards the lowest action index, which
    makes :meth:`predict` deterministic; the algorithm's exploration breaks ties at random.

    :param observation_space: ``Discrete`` observation space (the states)
    :param action_space: ``Discrete`` action space
    :param lr_schedule: unused (the step size is applied by the algorithm); kept for the
        signature Stable-Baselines3 uses to build policies
    :param initial_value: initial value of every table entry (an optimistic value encourages
        exploration)
    """

    q_table: th.Tensor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule | None = None,
        initial_value: float = 0.0,
    ) -> None:
        check_tabular_spaces(observation_space, action_space, type(self).__name__)
        super().__init__(observation_space, action_space)
        self.initial_value = float(initial_value)
        table = th.full((int(observation_space.n), int(action_space.n)), self.initial_value, dtype=th.float64)
        self.register_buffer("q_table", table)

    def state_index(self, obs: th.Tensor) -> th.Tensor:
        """Row of the table for each observation (Discrete spaces may start at a non-zero value)."""
        return obs.long().reshape(-1) - int(self.observation_space.start)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """Action values of a batch of observations, shape ``(batch, n_actions)``."""
        return self.q_table[self.state_index(obs)]

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        assert isinstance(observation, th.Tensor)
        return self.forward(observation).argmax(dim=1) + int(self.action_space.start)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "initial_value": self.initial_value,
        }
