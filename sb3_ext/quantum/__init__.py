"""Variational quantum circuit policies: a differentiable state-vector layer as SB3 policies."""

from sb3_ext.quantum.circuit import VariationalCircuit
from sb3_ext.quantum.policies import ScaledExpectations, VQCDQNPolicy, VQCPolicy, VQCQNetwork

__all__ = ["ScaledExpectations", "VQCDQNPolicy", "VQCPolicy", "VQCQNetwork", "VariationalCircuit"]
