"""Option-critic (Bacon, Harb & Precup 2017) as a Stable-Baselines3 algorithm."""

from sb3_ext.option_critic.buffers import OptionRolloutBuffer
from sb3_ext.option_critic.option_critic import OptionCritic
from sb3_ext.option_critic.policies import CnnPolicy, MlpPolicy, OptionCriticPolicy

__all__ = ["CnnPolicy", "MlpPolicy", "OptionCritic", "OptionCriticPolicy", "OptionRolloutBuffer"]
