"""Dreamer: an actor-critic learned in the imagination of a latent world model."""

from sb3_ext.dreamer.dreamer import Dreamer, lambda_returns, update_return_range
from sb3_ext.dreamer.policies import CnnPolicy, DreamerPolicy, MlpPolicy

__all__ = ["CnnPolicy", "Dreamer", "DreamerPolicy", "MlpPolicy", "lambda_returns", "update_return_range"]
