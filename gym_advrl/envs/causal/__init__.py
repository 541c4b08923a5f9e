"""Causal environment: a linear-Gaussian SCM with interventions, plus causal-discovery helpers.

``discovery`` needs the optional ``[causal]`` extra (causal-learn) and is imported only on use.
"""

from gym_advrl.envs.causal.env import CausalSCMEnv
from gym_advrl.envs.causal.scm import ACTION, LinearGaussianSCM

__all__ = ["ACTION", "CausalSCMEnv", "LinearGaussianSCM"]
