"""Prioritized experience replay for SB3 off-policy algorithms."""

from sb3_ext.per.actor_critic import PERSAC, PERTD3
from sb3_ext.per.dqn import PERDQN, PERQRDQN
from sb3_ext.per.mixin import PrioritizedReplayMixin

__all__ = ["PERDQN", "PERQRDQN", "PERSAC", "PERTD3", "PrioritizedReplayMixin"]
