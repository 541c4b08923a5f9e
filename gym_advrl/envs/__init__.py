"""Single-agent Gymnasium environments, one module per family."""

from gym_advrl.envs.cartpole import ContinuousCartPoleEnv
from gym_advrl.envs.causal import CausalSCMEnv
from gym_advrl.envs.goal_grid import GoalFourRoomsEnv, GoalGridWorldEnv
from gym_advrl.envs.goal_point import GoalPointMassEnv
from gym_advrl.envs.grid_world import FourRoomsEnv, GridWorldEnv
from gym_advrl.envs.pendulum import PendulumEnv
from gym_advrl.envs.quantum import QuantumGateEnv
from gym_advrl.envs.regulator import NonlinearRegulatorEnv
from gym_advrl.envs.sequence import SequenceMemoryEnv, SequenceTrackingEnv

__all__ = [
    "CausalSCMEnv",
    "ContinuousCartPoleEnv",
    "FourRoomsEnv",
    "GoalFourRoomsEnv",
    "GoalGridWorldEnv",
    "GoalPointMassEnv",
    "GridWorldEnv",
    "NonlinearRegulatorEnv",
    "PendulumEnv",
    "QuantumGateEnv",
    "SequenceMemoryEnv",
    "SequenceTrackingEnv",
]
