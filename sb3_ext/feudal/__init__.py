"""FeUdal Networks (Vezhnevets et al. 2017) as a Stable-Baselines3 algorithm."""

from sb3_ext.feudal.buffers import FeudalRolloutBuffer
from sb3_ext.feudal.feudal import FeudalAgent
from sb3_ext.feudal.policies import CnnPolicy, FeudalPolicy, FeudalState, MlpPolicy

__all__ = ["CnnPolicy", "FeudalAgent", "FeudalPolicy", "FeudalRolloutBuffer", "FeudalState", "MlpPolicy"]
