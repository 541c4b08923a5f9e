"""Dyna: model-based Q-learning with planning from a learned model (deep and tabular)."""

from sb3_ext.dyna.buffers import ModelReplayBuffer
from sb3_ext.dyna.dyna import Dyna
from sb3_ext.dyna.policies import TabularQPolicy
from sb3_ext.dyna.tabular_dyna_q import TabularDynaQ, TabularModel, TabularTransitions

__all__ = [
    "Dyna",
    "ModelReplayBuffer",
    "TabularDynaQ",
    "TabularModel",
    "TabularQPolicy",
    "TabularTransitions",
]
