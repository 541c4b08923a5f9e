"""WorldModelMPC: PETS-style model predictive control as a Stable-Baselines3 algorithm."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_ext.common.env_functions import EnvFunctionsMixin
from sb3_ext.common.learn import NamedLearnMixin
from sb3_ext.common.planners import CEM_ARGUMENTS, check_cem_arguments
from sb3_ext.common.transitions import Transitions, replay_transitions
from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_bool,
    check_holdout_ratio,
    check_int,
    check_positive_int,
)
from sb3_ext.mpc.policies import MPCPolicy


class WorldModelMPC(NamedLearnMixin, EnvFunctionsMixin, OffPolicyAlgorithm):
    """
    Model predictive control with a probabilistic ensemble (PETS, Chua et al. 2018).

    ``learn()`` alternates real data collection and model fitting: uniformly random actions for
    the first ``learning_starts`` steps, then actions planned by trajectory-sampling CEM (Box) or
    random shooting (Discrete) on the ensemble, which is refitted on all collected transitions
    every ``train_freq`` steps. Rewards and terminations used for planning come from the
    environment's batched ``reward_fn(obs, action, next_obs)`` / ``termination_fn(next_obs)`` when
    its unwrapped env provides them (``use_env_functions=True``), else from learned heads of the
    ensemble. ``predict(obs, state, episode_start)`` plans; the returned state is the shifted plan
    used as the next warm start (``evaluate_policy`` threads it automatically).

    :param policy: the policy (``"MlpPolicy"`` or :class:`MPCPolicy`); its ``policy_kwargs`` set
        the ensemble (``net_arch``, ``activation_fn``, ``n_members``, ``weight_decay``).
    :param env: the environment (Gymnasium env, registered id or VecEnv; Box observations).
    :param learning_rate: Adam learning rate of the ensemble (constant or schedule).
    :param buffer_size: replay buffer size (all transitions the model is fitted on).
    :param learning_starts: steps of uniformly random actions before the first model fit.
    :param batch_size: minibatch size of model training.
    :param train_freq: refit the model every ``train_freq`` steps (int, or ``(n, "step"|"episode")``).
    :param n_model_epochs: epochs over the data set per model fit (with little data an epoch is a
        single minibatch, so the early fits need many epochs to train the model at all).
    :param max_model_steps: cap on gradient steps per model fit (``None``: no cap); it binds once
        the data set holds ``max_model_steps / n_model_epochs`` minibatches.
    :param holdout_ratio: fraction of the data held out to rank ensemble members.
    :param horizon: planning horizon.
    :param population_size: candidate sequences per CEM iteration (random shooting: per call).
    :param n_elites: CEM elites.
    :param n_iterations: CEM iterations per action.
    :param alpha: CEM smoothing factor of the mean/variance update.
    :param initial_std: initial CEM std as a fraction of the action range.
    :param n_particles: TS-infinity particles per candidate (a multiple of ``n_members``).
    :param gamma: discount of the planned return (PETS: 1.0, undiscounted).
    :param use_env_functions: plan with the env's ``reward_fn`` / ``termination_fn`` when present.
    :param action_noise: optional exploration noise added to planned Box actions in ``learn()``.
    :param replay_buffer_class: replay buffer class (default SB3 ``ReplayBuffer``).
    :param replay_buffer_kwargs: keyword arguments of the replay buffer.
    :param policy_kwargs: keyword arguments of the policy (the ensemble, see above).
    :param stats_window_size: window for rollout logging averages.
    :param tensorboard_log: TensorBoard log directory (``None``: no logging).
    :param verbose: 0 none, 1 info, 2 debug.
    :param seed: random seed (numpy, torch, action space, planner).
    :param device: torch device (``"auto"`` picks CUDA when available; CPU is fast at these sizes).
    :param _init_setup_model: build the networks on construction.
    """

    log_name: ClassVar[str] = "WorldModelMPC"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MPCPolicy}
    policy: MPCPolicy

    def __init__(
        self,
        policy: str | type[MPCPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 200,
        batch_size: int = 256,
        train_freq: int | tuple[int, str] = 200,
        n_model_epochs: int = 100,
        max_model_steps: int | None = 400,
        holdout_ratio: float = 0.1,
        horizon: int = 15,
        population_size: int = 100,
        n_elites: int = 10,
        n_iterations: int = 3,
        alpha: float = 0.1,
        initial_std: float = 0.25,
        n_particles: int = 5,
        gamma: float = 1.0,
        use_env_functions: bool = True,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        check_algorithm_arguments(
            learning_rate=learning_rate,
            gamma=gamma,
            batch_size=batch_size,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
        )
        check_int("n_model_epochs", n_model_epochs, 1)
        if max_model_steps is not None and (
            isinstance(max_model_steps, bool)
            or not isinstance(max_model_steps, int | np.integer)
            or max_model_steps < 1
        ):
            raise ValueError(f"max_model_steps must be an integer >= 1 or None, got {max_model_steps!r}")
        check_holdout_ratio(holdout_ratio)
        check_bool("use_env_functions", use_env_functions)
        # Checked for Discrete actions too, where random shooting leaves the CEM arguments unused.
        check_cem_arguments(horizon, population_size, n_elites, n_iterations, alpha, initial_std)
        check_positive_int("n_particles", n_particles)
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=1,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
        )
        self.n_model_epochs, self.max_model_steps, self.holdout_ratio = (
            n_model_epochs,
            max_model_steps,
            holdout_ratio,
        )
        self.horizon, self.population_size, self.n_elites = horizon, population_size, n_elites
        self.n_iterations, self.alpha, self.initial_std = n_iterations, alpha, initial_std
        self.n_particles, self.use_env_functions = n_particles, use_env_functions
        # Decided once, from the first environment, and saved: they fix the ensemble's heads.
        self.reward_fn: Callable | None = None
        self.termination_fn: Callable | None = None
        self.uses_env_reward: bool | None = None
        self.uses_env_termination: bool | None = None
        self.model_fitted = False
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup
    def _setup_model(self) -> None:
        if not isinstance(self.observation_space, spaces.Box) or len(self.observation_space.shape) != 1:
            raise ValueError(
                f"WorldModelMPC needs a flat Box observation space, got {self.observation_space}"
            )
        if self.optimize_memory_usage:
            raise ValueError(
                "WorldModelMPC needs next observations in the buffer: optimize_memory_usage=False"
            )
        self._resolve_env_functions()
        user_kwargs = self.policy_kwargs
        self.policy_kwargs = {
            **user_kwargs,
            "learn_reward": not self.uses_env_reward,
            "learn_termination": not self.uses_env_termination,
            "planner_kwargs": {name: getattr(self, name) for name in CEM_ARGUMENTS},
            "n_particles": self.n_particles,
            "gamma": self.gamma,
        }
        try:
            super()._setup_model()
        finally:
            self.policy_kwargs = user_kwargs
        self.policy.set_env_functions(self.reward_fn, self.termination_fn)
        self._fit_rng = np.random.default_rng(int(th.randint(2**31, (1,)).item()))
        self._plan_state: np.ndarray | None = None
        self._episode_starts = np.ones(self.n_envs, dtype=bool)
        self._planning_latency_ms: deque[float] = deque(maxlen=1000)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._resolve_env_functions()
        self.policy.set_env_functions(self.reward_fn, self.termination_fn)

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "_fit_rng",
            "_plan_state",
            "_episode_starts",
            "_planning_latency_ms",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, *args: Any, **kwargs: Any):
        result = super()._setup_learn(total_timesteps, callback, *args, **kwargs)
        self._plan_state = None
        self._episode_starts = np.ones(self.n_envs, dtype=bool)
        return result

    # ------------------------------------------------------------------ acting
    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random actions until the model is first fitted, then the CEM mean (plus ``action_noise``)."""
        if self.num_timesteps < learning_starts or not self.model_fitted:
            action = np.array([self.action_space.sample() for _ in range(n_envs)])
        else:
            start = time.perf_counter()
            obs = th.as_tensor(self._last_obs, device=self.device)
            result, self._plan_state = self.policy.plan(obs, self._plan_state, self._episode_starts)
            action = result.action.cpu().numpy().reshape((n_envs, *self.action_space.shape))
            self._planning_latency_ms.append(1000.0 * (time.perf_counter() - start) / n_envs)
        if isinstance(self.action_space, spaces.Box):
            scaled = self.policy.scale_action(action)
            if action_noise is not None:
                scaled = np.clip(scaled + action_noise(), -1, 1)
            return self.policy.unscale_action(scaled), scaled
        return action, action

    def _on_step(self) -> None:
        # The first fit happens as soon as ``learning_starts`` random steps are stored, not at the
        # end of the next ``train_freq`` rollout (SB3 only trains once num_timesteps > learning_starts).
        if not self.model_fitted and self.num_timesteps >= max(self.learning_starts, 2):
            self.train(gradient_steps=1, batch_size=self.batch_size)

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:
        self._episode_starts = np.asarray(dones, dtype=bool).copy()
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    # ------------------------------------------------------------------ training
    def _transitions(self) -> Transitions:
        """All stored transitions, flattened over ``n_envs``, actions in the env's raw units."""
        data = replay_transitions(self.replay_buffer)
        if isinstance(self.action_space, spaces.Box):
            data = data._replace(actions=self.policy.unscale_action(data.actions))
        return data

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """Refit the ensemble on every stored transition (``n_model_epochs``, at most ``max_model_steps``)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        data = self._transitions()
        if data.observations.shape[0] < 2:
            return
        start = time.perf_counter()
        stats = self.policy.dynamics.fit(
            data.observations,
            data.actions,
            data.next_observations,
            data.rewards if self.policy.learn_reward else None,
            data.terminations if self.policy.learn_termination else None,
            n_epochs=self.n_model_epochs,
            batch_size=batch_size,
            holdout_ratio=self.holdout_ratio,
            max_gradient_steps=self.max_model_steps,
            generator=self._fit_rng,
        )
        self.policy.set_training_mode(False)
        self.model_fitted = True
        self._n_updates += int(stats["gradient_steps"])
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/model_fit_time_s", time.perf_counter() - start)
        self.logger.record("train/model_transitions", data.observations.shape[0])
        for key in ("train_loss", "train_nll", "train_mse", "train_termination_bce", "holdout_mse"):
            if key in stats:
                self.logger.record(f"train/model_{key.removeprefix('train_')}", stats[key])

    def dump_logs(self) -> None:
        if self._planning_latency_ms:
            latencies = np.asarray(self._planning_latency_ms)
            self.logger.record("time/planning_ms_median", float(np.median(latencies)))
            self.logger.record("time/planning_ms_p90", float(np.percentile(latencies, 90)))
        super().dump_logs()

    @property
    def planning_latency_ms(self) -> np.ndarray:
        """Wall-clock planning time per action (ms) of the most recent (up to 1000) planned steps."""
        return np.asarray(self._planning_latency_ms, dtype=np.float64)
