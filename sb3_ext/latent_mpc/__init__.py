"""LatentMPC: planning in the latent space of a learned world model (PlaNet)."""

from sb3_ext.latent_mpc.latent_mpc import LatentMPC
from sb3_ext.latent_mpc.policies import CnnPolicy, LatentMPCPolicy, MlpPolicy

__all__ = ["CnnPolicy", "LatentMPC", "LatentMPCPolicy", "MlpPolicy"]
