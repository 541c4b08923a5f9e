from sb3_ext.marl.maddpg.maddpg import MADDPG
from sb3_ext.marl.maddpg.networks import Actors, AttentionCritics, MLPCritics

__all__ = ["MADDPG", "Actors", "AttentionCritics", "MLPCritics"]
