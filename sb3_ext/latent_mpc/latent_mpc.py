"""LatentMPC: PlaNet-style planning in the latent space of a learned world model, an SB3 algorithm."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_ext.common.planners import CEM_ARGUMENTS, check_cem_arguments
from sb3_ext.common.sequence_buffer import SequenceBatch, SequenceReplayBuffer
from sb3_ext.common.sequence_learning import TrainRatioMixin
from sb3_ext.common.validation import check_algorithm_arguments, check_bool, check_float, check_int
from sb3_ext.latent_mpc.policies import CnnPolicy, LatentMPCPolicy, LatentMPCState, MlpPolicy

__all__ = ["LatentMPC"]


class LatentMPC(TrainRatioMixin, OffPolicyAlgorithm):
    """
    Model predictive control in the latent space of a learned world model (PlaNet, Hafner et al.,
    *Learning Latent Dynamics for Planning from Pixels*, ICML 2019).

    A :class:`~sb3_ext.common.world_model.LatentWorldModel` (RSSM, encoder/decoder chosen from the
    observation space, reward and continuation heads) is learned from sequences replayed from a
    :class:`~sb3_ext.common.sequence_buffer.SequenceReplayBuffer`; the agent acts by filtering its
    observations into the model's posterior state and planning from there with the shared
    planners of :mod:`sb3_ext.common.planners` (CEM over Box action sequences, random shooting
    over Discrete ones), scored by the reward head and the continuation head
    (:func:`~sb3_ext.common.planners.latent_returns`). So it plans from pixels, and without the
    env's ``reward_fn``. Only the first planned action is executed; the rest of the plan, shifted,
    warm-starts the next step.

    ``learn()``: uniformly random actions for ``learning_starts`` steps, then planned actions
    (plus ``action_noise``, PlaNet: Gaussian with std 0.3). Every environment step adds
    ``train_ratio`` replayed steps of credit; each world-model update replays ``batch_size x
    sequence_length`` steps, one gradient step on the model's loss (clipped to
    ``max_grad_norm``). ``predict(obs, state, episode_start)`` carries the filter state, the
    previous action and the warm start like sb3-contrib's ``RecurrentPPO``, so
    ``evaluate_policy`` works unchanged.

    Logged: ``train/world_model_loss`` and its terms (``reconstruction_loss``, ``reward_loss``,
    ``continuation_loss``, ``kl_loss``, ``kl``), ``train/n_updates``, ``time/planning_ms_median``.

    :param policy: ``"MlpPolicy"`` / ``"CnnPolicy"`` (the same :class:`LatentMPCPolicy`: the
        encoder follows from the observation space) or a subclass; ``policy_kwargs`` may hold
        ``world_model_kwargs`` (default: Gaussian latents as in PlaNet, the rest
        :class:`~sb3_ext.common.world_model.LatentWorldModel`'s defaults), ``use_continuation``,
        ``sample_latents`` and ``optimizer_eps``
    :param env: the environment (Gymnasium env, registered id or VecEnv): flat ``Box`` or
        ``uint8`` image observations, ``Box`` or ``Discrete`` actions
    :param learning_rate: Adam learning rate of the world model (PlaNet: 1e-3)
    :param buffer_size: time steps kept for replay
    :param learning_starts: steps of uniformly random actions first (PlaNet: 5 episodes)
    :param batch_size: sequences per update (PlaNet: 50)
    :param sequence_length: steps per replayed sequence, >= 2 (PlaNet: 50)
    :param train_ratio: replayed steps per environment step, > 0 (the speed/efficiency knob)
    :param horizon: planning horizon (PlaNet: 12)
    :param population_size: candidate sequences per CEM iteration (PlaNet: 1000)
    :param n_elites: CEM elites (PlaNet: 100)
    :param n_iterations: CEM iterations per action (PlaNet: 10)
    :param alpha: CEM smoothing of the mean/variance update (PlaNet: 0, refit from the elites)
    :param initial_std: initial CEM std as a fraction of the action range (PlaNet: a unit normal
        over ``[-1, 1]``, i.e. 0.5)
    :param gamma: discount of the planned return (PlaNet: 1, the plain sum of rewards)
    :param max_grad_norm: gradient clipping of the world model (PlaNet: 1000)
    :param action_noise: exploration noise added to planned Box actions in ``learn()`` (in the
        scaled ``[-1, 1]`` units)
    :param train_freq: environment steps per environment between update rounds
    :param stats_window_size: episodes the rollout statistics average over
    :param tensorboard_log: TensorBoard log directory (``None``: no logging)
    :param policy_kwargs: keyword arguments of the policy (see ``policy``)
    :param verbose: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo-random generators (numpy, torch, action space, planner)
    :param device: torch device
    :param _init_setup_model: build the networks on construction
    """

    #: The default ``tb_log_name`` of :meth:`learn`.
    log_name: ClassVar[str] = "LatentMPC"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    policy: LatentMPCPolicy
    replay_buffer: SequenceReplayBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[LatentMPCPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        batch_size: int = 16,
        sequence_length: int = 50,
        train_ratio: float = 64.0,
        horizon: int = 12,
        population_size: int = 500,
        n_elites: int = 50,
        n_iterations: int = 5,
        alpha: float = 0.0,
        initial_std: float = 0.5,
        gamma: float = 1.0,
        max_grad_norm: float = 1000.0,
        action_noise: ActionNoise | None = None,
        train_freq: int = 1,
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
        self._set_train_ratio(sequence_length, train_ratio)
        self.max_grad_norm = check_float("max_grad_norm", max_grad_norm, 0.0, low_inclusive=False)
        check_int("train_freq", train_freq, 1)
        # Checked for Discrete actions too, where random shooting leaves the CEM arguments unused.
        check_cem_arguments(horizon, population_size, n_elites, n_iterations, alpha, initial_std)
        for name in ("planner_kwargs", "gamma"):
            if name in (policy_kwargs or {}):
                raise ValueError(
                    f"pass the planner's arguments and gamma to LatentMPC, not {name!r} in policy_kwargs"
                )
        check_bool("use_continuation", (policy_kwargs or {}).get("use_continuation", True))
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
            replay_buffer_class=SequenceReplayBuffer,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            support_multi_env=True,
            sde_support=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
        )
        self._check_world_model_spaces()
        self.horizon, self.population_size, self.n_elites = horizon, population_size, n_elites
        self.n_iterations, self.alpha, self.initial_std = n_iterations, alpha, initial_std
        self._plan_state: LatentMPCState | None = None
        self._planning_latency_ms: deque[float] = deque(maxlen=1000)
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        user_kwargs = self.policy_kwargs
        # A new dict for the policy: SB3 keeps the caller's policy_kwargs object, which must not change.
        self.policy_kwargs = {
            **user_kwargs,
            "planner_kwargs": {name: getattr(self, name) for name in CEM_ARGUMENTS},
            "gamma": self.gamma,
        }
        try:
            super()._setup_model()
        finally:
            self.policy_kwargs = user_kwargs
        self._plan_state = None
        self._planning_latency_ms = deque(maxlen=1000)

    # ------------------------------------------------------------------ acting
    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform actions during warm-up, then the plan's first action (plus ``action_noise``)."""
        if self.num_timesteps < learning_starts:
            # The filter starts afresh, as at an episode start, when the planner takes over.
            self._plan_state = None
            action = np.array([self.action_space.sample() for _ in range(n_envs)])
            if isinstance(self.action_space, spaces.Box):
                scaled = self.policy.scale_action(action)
                return self.policy.unscale_action(scaled), scaled
            return action, action
        start = time.perf_counter()
        obs, _ = self.policy.obs_to_tensor(self._last_obs)
        starts = np.asarray(self._last_episode_starts, dtype=bool)
        model_action, _, self._plan_state = self.policy.act(obs, self._plan_state, starts, deterministic=True)
        self._planning_latency_ms.append(1000.0 * (time.perf_counter() - start) / n_envs)
        if isinstance(self.action_space, spaces.Box):
            scaled = model_action.cpu().numpy().reshape((n_envs, *self.action_space.shape))
            if action_noise is not None:
                scaled = np.clip(scaled + action_noise(), -1.0, 1.0)
                # The filter must see the action that was really taken.
                deter, stoch, _, plan = self._plan_state
                self._plan_state = (deter, stoch, scaled.astype(np.float32), plan)
            return self.policy.unscale_action(scaled), scaled
        action = self.policy.env_actions(model_action)
        return action, action

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        self._last_episode_starts = np.asarray(dones, dtype=bool)

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, *args: Any, **kwargs: Any):
        reset = kwargs.get("reset_num_timesteps", args[0] if args else True)
        result = super()._setup_learn(total_timesteps, callback, *args, **kwargs)
        if reset or self._plan_state is None:
            # env.reset() happened (or the model was loaded): every stream starts a new episode.
            self._plan_state = None
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
            self.replay_buffer.start_new_episodes()
        return result

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._plan_state = None

    # ------------------------------------------------------------------ learning
    def update(self, batch: SequenceBatch) -> dict[str, float]:
        """One gradient step of the world model on a batch of sequences; returns the logged values."""
        world_model = self.policy.world_model
        loss, terms = world_model.loss(batch)
        self.policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(world_model.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        return {"world_model_loss": loss.item(), **{name: value.item() for name, value in terms.items()}}

    def dump_logs(self) -> None:
        if self._planning_latency_ms:
            latencies = np.asarray(self._planning_latency_ms)
            self.logger.record("time/planning_ms_median", float(np.median(latencies)))
        super().dump_logs()

    @property
    def planning_latency_ms(self) -> np.ndarray:
        """Wall-clock planning time per action (ms) of the most recent (up to 1000) planned steps."""
        return np.asarray(self._planning_latency_ms, dtype=np.float64)

    # ------------------------------------------------------------------ saving
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_plan_state", "_planning_latency_ms"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
