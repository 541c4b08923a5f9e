"""Hierarchical Actor-Critic (Levy et al. 2019) as a Stable-Baselines3 algorithm."""

from sb3_ext.hac.buffers import GoalTransitionBuffer, TransitionKind
from sb3_ext.hac.hac import HAC
from sb3_ext.hac.policies import HACPolicy

__all__ = ["HAC", "GoalTransitionBuffer", "HACPolicy", "TransitionKind"]
