"""Stable-Baselines3 algorithms for gym-advrl."""

from sb3_ext.aux_dqn import AuxDQN, AuxDQNPolicy, PERAuxDQN
from sb3_ext.callbacks import WrapperInfoCallback
from sb3_ext.common.buffers import PrioritizedReplayBuffer
from sb3_ext.dreamer import Dreamer, DreamerPolicy
from sb3_ext.dyna import Dyna, TabularDynaQ, TabularQPolicy
from sb3_ext.feudal import FeudalAgent, FeudalPolicy
from sb3_ext.hac import HAC
from sb3_ext.latent_mpc import LatentMPC, LatentMPCPolicy
from sb3_ext.marl import MADDPG, QMIX, VDN
from sb3_ext.mbpo import MBPO
from sb3_ext.mcts import MCTS
from sb3_ext.mpc import WorldModelMPC
from sb3_ext.option_critic import OptionCritic, OptionCriticPolicy
from sb3_ext.per import PERDQN, PERQRDQN, PERSAC, PERTD3, PrioritizedReplayMixin
from sb3_ext.quantum import VariationalCircuit, VQCDQNPolicy, VQCPolicy

__all__ = [
    "AuxDQN",
    "AuxDQNPolicy",
    "Dreamer",
    "DreamerPolicy",
    "Dyna",
    "HAC",
    "FeudalAgent",
    "FeudalPolicy",
    "LatentMPC",
    "LatentMPCPolicy",
    "MADDPG",
    "MBPO",
    "MCTS",
    "OptionCritic",
    "OptionCriticPolicy",
    "PERAuxDQN",
    "PERDQN",
    "PERQRDQN",
    "PERSAC",
    "PERTD3",
    "PrioritizedReplayBuffer",
    "PrioritizedReplayMixin",
    "QMIX",
    "TabularDynaQ",
    "TabularQPolicy",
    "VDN",
    "VQCDQNPolicy",
    "VQCPolicy",
    "VariationalCircuit",
    "WorldModelMPC",
    "WrapperInfoCallback",
]
