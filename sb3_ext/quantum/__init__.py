"""Variational quantum circuit policies: a differentiable state-vector layer as SB3 policies.

Importing this package adds the alias ``"VQCPolicy"`` to SB3's ``PPO`` and ``A2C`` (the
actor-critic :class:`VQCPolicy`) and ``DQN`` (:class:`VQCDQNPolicy`), so ``PPO("VQCPolicy", env)``
and ``advrl train PPO CartPole-v1 --policy VQCPolicy`` work like ``"MlpPolicy"``; the classes can
also be passed directly.
"""

from stable_baselines3 import A2C, DQN, PPO

from sb3_ext.quantum.circuit import VariationalCircuit
from sb3_ext.quantum.policies import ScaledExpectations, VQCDQNPolicy, VQCPolicy, VQCQNetwork

__all__ = ["ScaledExpectations", "VQCDQNPolicy", "VQCPolicy", "VQCQNetwork", "VariationalCircuit"]

#: The policy each SB3 algorithm takes for the alias ``"VQCPolicy"``.
VQC_POLICY_ALIASES = {PPO: VQCPolicy, A2C: VQCPolicy, DQN: VQCDQNPolicy}
for _algorithm, _policy in VQC_POLICY_ALIASES.items():
    # A class attribute of SB3 shared by every instance: a new key, existing aliases untouched.
    _algorithm.policy_aliases = {**_algorithm.policy_aliases, "VQCPolicy": _policy}
