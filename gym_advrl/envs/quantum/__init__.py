"""Quantum gate synthesis: a state-vector simulator and the ``AdvRL/QuantumGate-v0`` env."""

from gym_advrl.envs.quantum.env import DEFAULT_GATES, GateAction, QuantumGateEnv

__all__ = ["DEFAULT_GATES", "GateAction", "QuantumGateEnv"]
