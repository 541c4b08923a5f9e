"""Natively vectorized environments: ``gym.make_vec(id, num_envs)`` steps every instance as one array.

Each class is the ``vector_entry_point`` of its ``AdvRL/`` id and reproduces the single env
exactly: instance ``i`` reset with seed ``s`` and given the same actions yields the same
observations, rewards, terminations and truncations as ``gym.make(id)`` reset with ``s``.
Only numpy is used, so they work with the bare install.
"""

from gym_advrl.envs.vector._base import AdvRLVectorEnv
from gym_advrl.envs.vector.causal import CausalSCMVectorEnv
from gym_advrl.envs.vector.classic import ContinuousCartPoleVectorEnv, PendulumVectorEnv
from gym_advrl.envs.vector.grid_world import FourRoomsVectorEnv, GridWorldVectorEnv
from gym_advrl.envs.vector.quantum import QuantumGateVectorEnv
from gym_advrl.envs.vector.regulator import NonlinearRegulatorVectorEnv
from gym_advrl.envs.vector.sequence import SequenceMemoryVectorEnv, SequenceTrackingVectorEnv

__all__ = [
    "AdvRLVectorEnv",
    "CausalSCMVectorEnv",
    "ContinuousCartPoleVectorEnv",
    "FourRoomsVectorEnv",
    "GridWorldVectorEnv",
    "NonlinearRegulatorVectorEnv",
    "PendulumVectorEnv",
    "QuantumGateVectorEnv",
    "SequenceMemoryVectorEnv",
    "SequenceTrackingVectorEnv",
]
