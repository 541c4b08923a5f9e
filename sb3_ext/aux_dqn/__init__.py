"""AuxDQN: DQN with auxiliary tasks on a shared encoder and data augmentation."""

from sb3_ext.aux_dqn.aux_dqn import AuxDQN, PERAuxDQN
from sb3_ext.aux_dqn.policies import AuxDQNPolicy, CnnPolicy, MlpPolicy

__all__ = ["AuxDQN", "AuxDQNPolicy", "CnnPolicy", "MlpPolicy", "PERAuxDQN"]
