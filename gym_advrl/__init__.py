"""gym-advrl environments.

Importing this package registers every environment under the ``AdvRL/`` namespace, so
``gymnasium.make("AdvRL/Pendulum-v0")`` just works. Only gymnasium, numpy and pettingzoo are
used here: torch and stable-baselines3 are never imported by ``gym_advrl``.
"""

from __future__ import annotations

import gymnasium
from gymnasium.envs.registration import register

from gym_advrl import envs as _envs
from gym_advrl.envs import *  # noqa: F403 - the env classes, re-exported (listed in envs.__all__)
from gym_advrl.envs.quantum.env import MAX_EPISODE_STEPS as _QUANTUM_GATE_STEPS

__version__ = "0.1.0"

# (id, entry point, max_episode_steps). One line per environment; the shared test suite
# (tests/test_envs.py) covers every id listed here.
ENV_SPECS: tuple[tuple[str, str, int], ...] = (
    ("AdvRL/GridWorld-v0", "gym_advrl.envs.grid_world:GridWorldEnv", 100),
    ("AdvRL/FourRooms-v0", "gym_advrl.envs.grid_world:FourRoomsEnv", 500),
    ("AdvRL/ContinuousCartPole-v0", "gym_advrl.envs.cartpole:ContinuousCartPoleEnv", 500),
    ("AdvRL/Pendulum-v0", "gym_advrl.envs.pendulum:PendulumEnv", 200),
    ("AdvRL/SequenceMemory-v0", "gym_advrl.envs.sequence:SequenceMemoryEnv", 1000),
    ("AdvRL/SequenceTracking-v0", "gym_advrl.envs.sequence:SequenceTrackingEnv", 50),
    ("AdvRL/NonlinearRegulator-v0", "gym_advrl.envs.regulator:NonlinearRegulatorEnv", 200),
    # The env's own constant: its target_depth bound depends on the time limit.
    ("AdvRL/QuantumGate-v0", "gym_advrl.envs.quantum.env:QuantumGateEnv", _QUANTUM_GATE_STEPS),
    ("AdvRL/CausalSCM-v0", "gym_advrl.envs.causal.env:CausalSCMEnv", 50),
    # Goal-conditioned (Dict observations, compute_reward) for hindsight experience replay.
    ("AdvRL/GoalGridWorld-v0", "gym_advrl.envs.goal_grid:GoalGridWorldEnv", 50),
    ("AdvRL/GoalFourRooms-v0", "gym_advrl.envs.goal_grid:GoalFourRoomsEnv", 100),
    ("AdvRL/GoalPointMass-v0", "gym_advrl.envs.goal_point:GoalPointMassEnv", 50),
)

# Natively vectorized versions (gym_advrl.envs.vector), used by gym.make_vec(id, num_envs).
VECTOR_ENTRY_POINTS: dict[str, str] = {
    "AdvRL/GridWorld-v0": "gym_advrl.envs.vector.grid_world:GridWorldVectorEnv",
    "AdvRL/FourRooms-v0": "gym_advrl.envs.vector.grid_world:FourRoomsVectorEnv",
    "AdvRL/Pendulum-v0": "gym_advrl.envs.vector.classic:PendulumVectorEnv",
    "AdvRL/ContinuousCartPole-v0": "gym_advrl.envs.vector.classic:ContinuousCartPoleVectorEnv",
    "AdvRL/NonlinearRegulator-v0": "gym_advrl.envs.vector.regulator:NonlinearRegulatorVectorEnv",
    "AdvRL/SequenceMemory-v0": "gym_advrl.envs.vector.sequence:SequenceMemoryVectorEnv",
    "AdvRL/SequenceTracking-v0": "gym_advrl.envs.vector.sequence:SequenceTrackingVectorEnv",
    "AdvRL/CausalSCM-v0": "gym_advrl.envs.vector.causal:CausalSCMVectorEnv",
    "AdvRL/QuantumGate-v0": "gym_advrl.envs.vector.quantum:QuantumGateVectorEnv",
}

for _env_id, _entry_point, _max_steps in ENV_SPECS:
    if _env_id not in gymnasium.registry:
        register(
            id=_env_id,
            entry_point=_entry_point,
            vector_entry_point=VECTOR_ENTRY_POINTS.get(_env_id),
            max_episode_steps=_max_steps,
        )

__all__ = ["ENV_SPECS", "VECTOR_ENTRY_POINTS", *_envs.__all__]
