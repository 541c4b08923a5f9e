"""Multi-agent algorithms for PettingZoo parallel environments, with the SB3 contract."""

from sb3_ext.marl.common.base import MultiAgentAlgorithm
from sb3_ext.marl.common.buffers import (
    MultiAgentEpisodeBuffer,
    MultiAgentEpisodeSamples,
    MultiAgentReplayBuffer,
    MultiAgentSamples,
)
from sb3_ext.marl.common.evaluation import evaluate_marl_policy
from sb3_ext.marl.maddpg import MADDPG
from sb3_ext.marl.qmix import QMIX, VDN

__all__ = [
    "MADDPG",
    "QMIX",
    "VDN",
    "MultiAgentAlgorithm",
    "MultiAgentEpisodeBuffer",
    "MultiAgentEpisodeSamples",
    "MultiAgentReplayBuffer",
    "MultiAgentSamples",
    "evaluate_marl_policy",
]
