"""MBPO: model-based policy optimization (SAC on branched rollouts of the shared ensemble)."""

from sb3_ext.mbpo.buffers import ModelBuffer, ModelTransitions
from sb3_ext.mbpo.mbpo import MBPO

__all__ = ["MBPO", "ModelBuffer", "ModelTransitions"]
