"""MBPO: model-based policy optimization (Janner et al. 2019) as a Stable-Baselines3 SAC subclass."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule
from stable_baselines3.sac import SAC
from stable_baselines3.sac.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SACPolicy

from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.common.env_functions import EnvFunctionsMixin, rewards_and_terminations
from sb3_ext.common.learn import NamedLearnMixin
from sb3_ext.common.transitions import Transitions, replay_transitions
from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_bool,
    check_holdout_ratio,
    check_int,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from sb3_ext.mbpo.buffers import ModelBuffer

#: The ensemble of the paper (7 members, 5 elites, 4 hidden layers of 200 swish units).
DEFAULT_MODEL_KWARGS: dict[str, Any] = {"n_members": 7, "n_elites": 5, "hidden_sizes": (200, 200, 200, 200)}


def check_rollout_schedule(schedule: Any) -> tuple[int, int, int, int]:
    """Return ``(min_length, max_length, first_epoch, last_epoch)`` as ints, or raise ``ValueError``."""
    message = (
        "rollout_schedule must be (min_length, max_length, first_epoch, last_epoch) of integers with "
        f"1 <= min_length <= max_length and 0 <= first_epoch <= last_epoch, got {schedule!r}"
    )
    if not isinstance(schedule, Sequence) or isinstance(schedule, str) or len(schedule) != 4:
        raise ValueError(message)
    if any(isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer) for v in schedule):
        raise ValueError(message)
    min_length, max_length, first_epoch, last_epoch = (int(v) for v in schedule)
    if not (1 <= min_length <= max_length and 0 <= first_epoch <= last_epoch):
        raise ValueError(message)
    return min_length, max_length, first_epoch, last_epoch


def rollout_length_at(epoch: int, schedule: tuple[int, int, int, int]) -> int:
    """The paper's rollout length at ``epoch``: ``min_length`` up to ``first_epoch``, then linear
    in the epoch up to ``max_length`` at ``last_epoch`` and constant after, rounded down."""
    min_length, max_length, first_epoch, last_epoch = schedule
    if epoch <= first_epoch:
        return min_length
    fraction = min((epoch - first_epoch) / max(last_epoch - first_epoch, 1), 1.0)
    return int(min_length + fraction * (max_length - min_length))


class MBPO(NamedLearnMixin, EnvFunctionsMixin, SAC):
    """
    Model-based policy optimization (Janner, Fu, Zhang & Levine 2019): SAC trained mostly on
    short branched rollouts of a learned probabilistic ensemble.

    * **Model.** A :class:`~sb3_ext.common.dynamics.ProbabilisticEnsemble` (the PETS ensemble
      shared with ``WorldModelMPC`` and ``Dyna``) is fitted to every real transition every
      ``model_train_freq`` environment steps, from ``model_learning_starts`` on.
    * **Branched rollouts.** After each fit, ``rollout_batch_size`` start states are drawn from
      the real replay buffer and rolled out for ``k`` steps under the current (stochastic) SAC
      policy, each step by a random elite member sampling its Gaussian (TS-1). ``k`` follows
      ``rollout_schedule = (min_length, max_length, first_epoch, last_epoch)``: ``min_length`` up
      to epoch ``first_epoch``, then linear up to ``max_length`` at ``last_epoch`` (an epoch is
      ``epoch_length`` environment steps). Rewards and terminations come from the env's
      ``reward_fn`` / ``termination_fn`` when it has them (``use_env_functions``), else from the
      ensemble's learned heads; a rollout stops at a predicted termination. The transitions go
      into a model buffer that keeps the rollouts of the last ``model_retain_refits`` refits.
    * **Policy optimization.** SAC's update unchanged, on minibatches of which
      ``int(real_ratio * batch_size)`` transitions come from the real replay buffer and the rest
      from the model buffer (all real while the model buffer is empty), ``utd_ratio`` gradient
      steps per environment step.

    ``predict`` is SAC's: the actor alone, no model at run time. Observations must be a flat
    ``Box`` (the ensemble predicts them), actions a ``Box`` (SAC).

    All SAC arguments keep SB3's meaning and defaults, except ``gradient_steps`` (below). The
    MBPO arguments are:

    :param policy: the SAC policy (``"MlpPolicy"``; its ``policy_kwargs`` as SAC's)
    :param env: the environment (Gymnasium env, registered id or VecEnv)
    :param gradient_steps: SAC's ``gradient_steps`` (per ``train_freq`` rollout; -1, the default
        here: as many as environment steps collected), multiplied by ``utd_ratio``
    :param utd_ratio: SAC gradient steps per environment step (update-to-data ratio; the paper
        uses 20 on MuJoCo). Fractions accumulate across rollouts
    :param real_ratio: share of real transitions in every SAC minibatch (the paper: 0.05)
    :param model_train_freq: environment steps between two fits of the model (and two rollout
        batches; the paper: 250)
    :param model_learning_starts: environment steps before the first fit (default: ``learning_starts``)
    :param rollout_batch_size: start states drawn from the real buffer per rollout batch (the
        paper: 100,000; the default here, 10,000, keeps a refit's rollouts to about a second on a CPU)
    :param rollout_schedule: ``(min_length, max_length, first_epoch, last_epoch)`` of the rollout
        length (the paper's Hopper setting ``(1, 15, 20, 100)``)
    :param epoch_length: environment steps per epoch of the rollout schedule (the paper: 1000)
    :param model_retain_refits: the model buffer holds the rollouts of this many refits (the
        paper keeps one epoch: 1000 / 250 = 4)
    :param model_gradient_steps: gradient steps per model fit (minibatches from each member's
        bootstrap resample of all real transitions)
    :param model_batch_size: minibatch size of the model fit
    :param model_holdout_ratio: share of the real transitions held out to rank the members
        (the elites are the best ``n_elites`` on it)
    :param use_env_functions: use the env's ``reward_fn`` / ``termination_fn`` when present
    :param model_class: the dynamics model class (:class:`ProbabilisticEnsemble` or a subclass)
    :param model_kwargs: keyword arguments of ``model_class`` (default: 7 members, 5 elites,
        hidden layers ``(200, 200, 200, 200)``, as in the paper)
    """

    log_name: ClassVar[str] = "MBPO"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    dynamics_model: ProbabilisticEnsemble
    model_buffer: ModelBuffer

    def __init__(
        self,
        policy: str | type[SACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = -1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        utd_ratio: float = 20.0,
        real_ratio: float = 0.05,
        model_train_freq: int = 250,
        model_learning_starts: int | None = None,
        rollout_batch_size: int = 10_000,
        rollout_schedule: tuple[int, int, int, int] = (1, 15, 20, 100),
        epoch_length: int = 1000,
        model_retain_refits: int = 4,
        model_gradient_steps: int = 500,
        model_batch_size: int = 256,
        model_holdout_ratio: float = 0.1,
        use_env_functions: bool = True,
        model_class: type[ProbabilisticEnsemble] = ProbabilisticEnsemble,
        model_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_algorithm_arguments(
            learning_rate=learning_rate,
            gamma=gamma,
            batch_size=batch_size,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
        )
        self.utd_ratio = check_positive("utd_ratio", utd_ratio)
        self.real_ratio = check_unit_interval("real_ratio", real_ratio)
        self.rollout_schedule = check_rollout_schedule(rollout_schedule)
        self.model_train_freq = check_positive_int("model_train_freq", model_train_freq)
        if model_learning_starts is not None:
            check_int("model_learning_starts", model_learning_starts, 0)
        self.model_learning_starts = (
            learning_starts if model_learning_starts is None else model_learning_starts
        )
        self.rollout_batch_size = check_positive_int("rollout_batch_size", rollout_batch_size)
        self.epoch_length = check_positive_int("epoch_length", epoch_length)
        self.model_retain_refits = check_positive_int("model_retain_refits", model_retain_refits)
        self.model_gradient_steps = check_positive_int("model_gradient_steps", model_gradient_steps)
        self.model_batch_size = check_positive_int("model_batch_size", model_batch_size)
        self.model_holdout_ratio = check_holdout_ratio(model_holdout_ratio)
        self.use_env_functions = check_bool("use_env_functions", use_env_functions)
        if not (isinstance(model_class, type) and issubclass(model_class, ProbabilisticEnsemble)):
            raise ValueError(
                f"model_class must be ProbabilisticEnsemble or a subclass of it, got {model_class!r}"
            )
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise ValueError(
                f"model_kwargs must be a dict of ProbabilisticEnsemble arguments or None, got {model_kwargs!r}"
            )
        if env is not None:
            # Checked here, before SAC's own assertion, so that the error is a ValueError.
            env = maybe_make_env(env, verbose)
            if not isinstance(env.action_space, spaces.Box):
                raise ValueError(
                    f"action_space must be a gymnasium.spaces.Box (MBPO trains SAC), got {env.action_space}"
                )
            obs_space = env.observation_space
            if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
                raise ValueError(
                    f"observation_space must be a flat gymnasium.spaces.Box (the model predicts it), got {obs_space}"
                )
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            use_sde_at_warmup=use_sde_at_warmup,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.model_class = model_class
        self.model_kwargs = {**DEFAULT_MODEL_KWARGS, **(model_kwargs or {})}
        # Decided once, from the first environment, and saved: they fix the ensemble's heads.
        self.reward_fn: Callable | None = None
        self.termination_fn: Callable | None = None
        self.uses_env_reward: bool | None = None
        self.uses_env_termination: bool | None = None
        self.model_fits = 0
        self._last_model_fit_step = 0
        self._pending_gradient_steps = 0.0
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup
    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.replay_buffer, ReplayBuffer) or isinstance(
            self.replay_buffer, DictReplayBuffer
        ):
            raise ValueError(
                "MBPO fits its model to the arrays of an SB3 ReplayBuffer, got "
                f"{type(self.replay_buffer).__name__}"
            )
        if self.optimize_memory_usage:
            raise ValueError("MBPO needs next observations in the buffer: optimize_memory_usage=False")
        self._resolve_env_functions()
        self.dynamics_model = self.model_class(
            self.observation_space,
            self.action_space,
            learn_reward=not self.uses_env_reward,
            learn_termination=not self.uses_env_termination,
            device=self.device,
            **self.model_kwargs,
        )
        self.model_buffer = ModelBuffer(
            self._model_buffer_capacity(self.rollout_length()),
            self.observation_space.shape[0],
            self.action_space.shape[0],
        )
        if getattr(self, "_model_rng", None) is None:
            self._model_rng = np.random.default_rng(self.seed)
        self._action_low = th.as_tensor(self.action_space.low, dtype=th.float32, device=self.device)
        self._action_high = th.as_tensor(self.action_space.high, dtype=th.float32, device=self.device)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._resolve_env_functions()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "model_buffer", "_model_rng", "_action_low", "_action_high"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "dynamics_model", "dynamics_model.optimizer"], variables

    # ------------------------------------------------------------------ schedule
    @property
    def epoch(self) -> int:
        """The current epoch of the rollout schedule: ``num_timesteps // epoch_length``."""
        return self.num_timesteps // self.epoch_length

    def rollout_length(self, epoch: int | None = None) -> int:
        """The rollout length at ``epoch`` (default: the current one), from ``rollout_schedule``."""
        return rollout_length_at(self.epoch if epoch is None else epoch, self.rollout_schedule)

    def _model_buffer_capacity(self, rollout_length: int) -> int:
        return self.model_retain_refits * self.rollout_batch_size * rollout_length

    # ------------------------------------------------------------------ model
    def _raw_actions(self, scaled: th.Tensor) -> th.Tensor:
        """Policy actions in [-1, 1] -> the env's units (the model and ``reward_fn`` work in those)."""
        return self._action_low + 0.5 * (scaled + 1.0) * (self._action_high - self._action_low)

    def real_transitions(self) -> Transitions:
        """Every real transition stored so far, actions in the env's units, time limits not terminations."""
        data = replay_transitions(self.replay_buffer)
        return data._replace(actions=self.policy.unscale_action(data.actions).astype(np.float32))

    def train_model(self) -> dict[str, float]:
        """Fit the ensemble to every real transition; its losses are logged under ``model/``."""
        data = self.real_transitions()
        start = time.perf_counter()
        stats = self.dynamics_model.fit(
            data.observations,
            data.actions,
            data.next_observations,
            data.rewards if self.dynamics_model.learn_reward else None,
            data.terminations if self.dynamics_model.learn_termination else None,
            n_epochs=self.model_gradient_steps,  # every epoch has >= 1 step: the step cap decides
            batch_size=self.model_batch_size,
            holdout_ratio=self.model_holdout_ratio,
            max_gradient_steps=self.model_gradient_steps,
            generator=self._model_rng,
        )
        self.model_fits += 1
        for key, value in stats.items():
            self.logger.record(f"model/{key}", value)
        self.logger.record("model/fit_time_s", time.perf_counter() - start)
        self.logger.record("model/fits", self.model_fits, exclude="tensorboard")
        return stats

    @th.no_grad()
    def rollout_model(self, start_observations: np.ndarray | th.Tensor | None = None) -> int:
        """
        Branched rollouts: from ``start_observations`` (default: ``rollout_batch_size`` states
        drawn from the real replay buffer), ``rollout_length()`` steps of the current stochastic
        policy in the model; every transition is added to the model buffer. A row stops at its
        first termination. Returns the number of transitions added.
        """
        length = self.rollout_length()
        self.model_buffer.resize(self._model_buffer_capacity(length))
        if start_observations is None:
            start_observations = self.replay_buffer.sample(self.rollout_batch_size).observations
        obs = th.as_tensor(start_observations, dtype=th.float32, device=self.device)
        self.policy.set_training_mode(False)
        added = 0
        for _ in range(length):
            scaled = self.actor(obs, deterministic=False)
            actions = self._raw_actions(scaled)
            next_obs, model_rewards, model_terminations = self.dynamics_model.sample(obs, actions)
            rewards, terminations = rewards_and_terminations(
                obs, actions, next_obs, model_rewards, model_terminations, self.reward_fn, self.termination_fn
            )
            if terminations is None:
                terminations = th.zeros_like(rewards, dtype=th.bool)
            # A diverging model state is never stored nor rolled on.
            finite = th.isfinite(next_obs).all(dim=-1) & th.isfinite(rewards)
            self.model_buffer.add(
                *(x[finite].cpu().numpy() for x in (obs, scaled, next_obs, rewards, terminations.float()))
            )
            added += int(finite.sum())
            obs = next_obs[finite & ~terminations]
            if obs.shape[0] == 0:
                break
        self.logger.record("model/rollout_length", length)
        self.logger.record("model/rollout_transitions", added)
        self.logger.record("model/buffer_size", self.model_buffer.size())
        return added

    def _on_step(self) -> None:
        """Refit the model and roll it out every ``model_train_freq`` steps, from ``model_learning_starts``."""
        super()._on_step()
        if self.num_timesteps < max(self.model_learning_starts, 2):
            return
        if self.model_fits == 0 or self.num_timesteps - self._last_model_fit_step >= self.model_train_freq:
            self._last_model_fit_step = self.num_timesteps
            self.train_model()
            self.rollout_model()

    # ------------------------------------------------------------------ policy optimization
    def mixed_batch(
        self, batch_size: int, replay_buffer: ReplayBuffer | None = None
    ) -> tuple[ReplayBufferSamples, int]:
        """A SAC minibatch: ``int(real_ratio * batch_size)`` real transitions (from ``replay_buffer``,
        default the model's) first, then model transitions for the rest (all real while the model
        buffer is empty). Returns it and the number of model transitions in it."""
        replay_buffer = self.replay_buffer if replay_buffer is None else replay_buffer
        n_model = 0 if self.model_buffer.size() == 0 else batch_size - int(self.real_ratio * batch_size)
        n_real = batch_size - n_model
        real = replay_buffer.sample(n_real, env=self._vec_normalize_env) if n_real > 0 else None
        if n_model == 0:
            return real, 0
        imagined = self.model_buffer.sample(n_model, self._model_rng)
        rewards = imagined.rewards
        if self._vec_normalize_env is not None:
            rewards = self._vec_normalize_env.normalize_reward(rewards).astype(np.float32)
        model = {
            "observations": imagined.observations,
            "actions": imagined.actions,
            "next_observations": imagined.next_observations,
            "dones": imagined.terminations.reshape(-1, 1),
            "rewards": rewards.reshape(-1, 1),
        }
        model_tensors = {key: th.as_tensor(value, device=self.device) for key, value in model.items()}
        with_discounts = real is not None and real.discounts is not None
        if with_discounts:
            model_tensors["discounts"] = th.full((n_model, 1), self.gamma, device=self.device)
        if real is None:
            return ReplayBufferSamples(**model_tensors, discounts=None), n_model
        mixed = {
            name: th.cat([getattr(real, name), model_tensors[name].to(getattr(real, name).dtype)])
            for name in model_tensors
        }
        if not with_discounts:
            mixed["discounts"] = None
        return ReplayBufferSamples(**mixed), n_model

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SAC's update, ``utd_ratio`` times as often, on minibatches from :meth:`mixed_batch`."""
        self._pending_gradient_steps += self.utd_ratio * gradient_steps
        n_updates = int(self._pending_gradient_steps)
        self._pending_gradient_steps -= n_updates
        if n_updates == 0:
            return
        real_buffer = self.replay_buffer
        sampler = _MixedSampler(self, real_buffer)
        # SAC's train() draws every minibatch from self.replay_buffer: for its duration that is
        # the mixed sampler, so that the update itself stays SB3's.
        self.replay_buffer = sampler  # type: ignore[assignment]
        try:
            super().train(n_updates, batch_size)
        finally:
            self.replay_buffer = real_buffer
        self.logger.record("train/model_fraction", sampler.n_model / max(sampler.n_total, 1))

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, *args: Any, **kwargs: Any):
        result = super()._setup_learn(total_timesteps, callback, *args, **kwargs)
        # With reset_num_timesteps the step count restarts: so does the refit schedule.
        self._last_model_fit_step = min(self._last_model_fit_step, self.num_timesteps)
        return result


class _MixedSampler:
    """Stands in for the replay buffer during :meth:`MBPO.train`: ``sample`` returns mixed batches."""

    def __init__(self, model: MBPO, replay_buffer: ReplayBuffer) -> None:
        self.model, self.replay_buffer = model, replay_buffer
        self.n_model = self.n_total = 0

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        batch, n_model = self.model.mixed_batch(batch_size, self.replay_buffer)
        self.n_model += n_model
        self.n_total += batch_size
        return batch
