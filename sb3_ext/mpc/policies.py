"""Model predictive control policy: a probabilistic ensemble plus a sampling-based planner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.common.planners import (
    PlanResult,
    RewardFn,
    TerminationFn,
    trajectory_sampling_returns,
)
from sb3_ext.common.planning_policy import PlanningPolicyMixin

#: Seed of the planner's random generator for ``deterministic=True`` predictions: a deterministic
#: plan is then a pure function of the observation, the warm-start state and the model weights.
DETERMINISTIC_PLANNING_SEED = 0


class MPCPolicy(PlanningPolicyMixin, BasePolicy):
    """
    PETS policy: plans with a :class:`ProbabilisticEnsemble` by trajectory sampling and CEM
    (Box actions) or random shooting (Discrete actions).

    The warm start (the shifted previous plan) is carried like a recurrent state through
    ``predict(obs, state, episode_start)``; ``state=None`` or ``episode_start=True`` plans cold.

    :param observation_space: flat Box observation space.
    :param action_space: Box or Discrete action space.
    :param lr_schedule: learning-rate schedule of the ensemble's optimizer.
    :param net_arch: hidden layer sizes of every ensemble member.
    :param activation_fn: activation between hidden layers.
    :param n_members: ensemble size.
    :param weight_decay: L2 weight decay of the ensemble weights.
    :param learn_reward: give the ensemble a reward head (set by the algorithm when the env has no
        ``reward_fn``).
    :param learn_termination: give the ensemble a termination head (likewise for ``termination_fn``).
    :param planner_kwargs: keyword arguments of the planner: :class:`CEMPlanner`'s for Box actions
        (``horizon``, ``population_size``, ``n_elites``, ``n_iterations``, ``alpha``,
        ``initial_std``), of which :class:`RandomShootingPlanner` (Discrete actions) takes
        ``horizon`` and ``population_size``.
    :param n_particles: TS-infinity particles per candidate (a multiple of ``n_members``).
    :param gamma: discount of the planned return.
    """

    constructor_parameter_names = (
        "net_arch",
        "activation_fn",
        "n_members",
        "weight_decay",
        "learn_reward",
        "learn_termination",
        "planner_kwargs",
        "n_particles",
        "gamma",
    )

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: Sequence[int] = (64, 64),
        activation_fn: type[nn.Module] = nn.SiLU,
        n_members: int = 5,
        weight_decay: float = 5e-5,
        learn_reward: bool = True,
        learn_termination: bool = True,
        planner_kwargs: dict[str, Any] | None = None,
        n_particles: int = 5,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(observation_space, action_space, squash_output=False)
        if n_particles % n_members != 0:
            raise ValueError(f"n_particles must be a multiple of n_members={n_members}, got {n_particles}")
        self.net_arch, self.activation_fn = tuple(net_arch), activation_fn
        self.n_members, self.weight_decay = n_members, weight_decay
        self.learn_reward, self.learn_termination = learn_reward, learn_termination
        self.planner_kwargs = dict(planner_kwargs or {})
        self.n_particles, self.gamma = n_particles, gamma
        self.dynamics = ProbabilisticEnsemble(
            observation_space,
            action_space,
            n_members=n_members,
            hidden_sizes=self.net_arch,
            activation_fn=activation_fn,
            learn_reward=learn_reward,
            learn_termination=learn_termination,
            learning_rate=lr_schedule(1),
            weight_decay=weight_decay,
        )
        self.optimizer = self.dynamics.optimizer
        self._init_planner(action_space, self.planner_kwargs)
        self.reward_fn: RewardFn | None = None
        self.termination_fn: TerminationFn | None = None

    @property
    def planner_device(self) -> th.device:
        return self.dynamics.device

    def set_env_functions(self, reward_fn: RewardFn | None, termination_fn: TerminationFn | None) -> None:
        """Plan with the environment's batched ``reward_fn(obs, action, next_obs)`` / ``termination_fn``."""
        if reward_fn is None and not self.learn_reward:
            raise ValueError("this policy has no reward head: a reward_fn is required")
        self.reward_fn, self.termination_fn = reward_fn, termination_fn

    # ------------------------------------------------------------------ planning
    def score(self, obs: th.Tensor, action_sequences: th.Tensor, generator: th.Generator) -> th.Tensor:
        """Model-predicted returns ``(B, P)`` of candidate sequences from ``obs (B, obs_dim)``."""
        return trajectory_sampling_returns(
            self.dynamics,
            obs,
            action_sequences,
            self.n_particles,
            reward_fn=self.reward_fn,
            termination_fn=self.termination_fn,
            discount=self.gamma,
            generator=generator,
        )

    @th.no_grad()
    def plan(
        self,
        obs: th.Tensor,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        generator: th.Generator | None = None,
    ) -> tuple[PlanResult, np.ndarray]:
        """
        Plan for a batch ``obs (B, obs_dim)`` from the warm start ``state`` (rows where
        ``episode_start`` is true start cold). Returns the plan and the next warm-start state.
        """
        generator = self.generator if generator is None else generator
        obs = obs.float().reshape(obs.shape[0], -1)
        batch = obs.shape[0]
        if state is None:
            warm = None
        else:
            warm = th.as_tensor(np.asarray(state), device=self.device)
            if warm.shape[0] != batch:
                raise ValueError(f"state holds plans for {warm.shape[0]} observations, got {batch}")
            if episode_start is not None and np.any(episode_start):
                reset = th.as_tensor(np.asarray(episode_start, dtype=bool).reshape(batch), device=self.device)
                cold = self.planner.initial_plan(batch, generator)
                warm = th.where(reset.view(-1, *([1] * (warm.ndim - 1))), cold.to(warm.dtype), warm)
        result = self.planner.plan(obs, lambda o, a: self.score(o, a, generator), warm, generator)
        shifted = self.planner.shift(result.plan, generator)
        return result, shifted.cpu().numpy()

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        result, _ = self.plan(observation, generator=self._generator_for(deterministic))
        return self._first_action(result, deterministic)

    def _generator_for(self, deterministic: bool) -> th.Generator:
        if deterministic:
            return th.Generator(device=self.device).manual_seed(DETERMINISTIC_PLANNING_SEED)
        return self.generator

    def _first_action(self, result: PlanResult, deterministic: bool) -> th.Tensor:
        if deterministic or result.action_std is None:
            return result.action
        # Stochastic action: a sample of the final CEM distribution, inside the action box.
        noise = th.randn(result.action.shape, device=self.device, generator=self.generator)
        action = result.action + result.action_std * noise
        return th.maximum(th.minimum(action, self.planner.high), self.planner.low)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """
        Plan actions for one observation or a batch.

        :param observation: the observation(s).
        :param state: the warm start returned by the previous call (``None``: plan cold).
        :param episode_start: per-observation flags; true rows ignore ``state`` and plan cold.
        :param deterministic: return the CEM mean (random shooting: the best sequence's first
            action), planned with a fixed random seed, so identical inputs give identical actions.
            Otherwise the planner's running generator is used and Box actions are sampled from the
            final CEM distribution.
        :return: the action(s) and the next warm-start state ``(B, horizon, ...)``.
        """
        self.set_training_mode(False)
        if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
            raise ValueError("predict() got an (obs, info) tuple: pass the observation only")
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        result, next_state = self.plan(obs_tensor, state, episode_start, self._generator_for(deterministic))
        actions = self._first_action(result, deterministic).cpu().numpy()
        actions = actions.reshape((-1, *self.action_space.shape))
        if isinstance(self.action_space, spaces.Box):
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, next_state


MlpPolicy = MPCPolicy
