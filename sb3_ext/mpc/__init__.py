"""WorldModelMPC: probabilistic-ensemble model predictive control (PETS)."""

from sb3_ext.mpc.mpc import WorldModelMPC
from sb3_ext.mpc.policies import MlpPolicy, MPCPolicy

__all__ = ["MPCPolicy", "MlpPolicy", "WorldModelMPC"]
