"""Deep Dyna-Q: DQN that also learns from transitions imagined by a learned ensemble model."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import (
    GymEnv,
    ReplayBufferSamples,
    Schedule,
    TrainFrequencyUnit,
)
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.dqn import DQN
from stable_baselines3.dqn.policies import DQNPolicy, MlpPolicy
from torch.nn import functional as F

from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.common.learn import NamedLearnMixin
from sb3_ext.common.td import q_learning_target
from sb3_ext.common.transitions import Transitions, replay_transitions
from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from sb3_ext.dyna.buffers import ModelReplayBuffer

IMAGINED_ACTIONS = ("uniform", "policy", "replay")


class Dyna(NamedLearnMixin, DQN):
    """
    Deep Dyna-Q: DQN plus a learned dynamics model whose imagined transitions it also learns from
    (Sutton 1990's Dyna architecture with function approximation, in the style of MBPO's model
    buffer, Janner et al. 2019).

    * **Model learning.** A :class:`~sb3_ext.common.dynamics.ProbabilisticEnsemble` (Gaussian
      NLL on state deltas and rewards, Bernoulli termination head, bootstrapped members) is fitted
      to every real transition in the replay buffer every ``model_train_freq`` environment steps,
      starting at ``model_learning_starts``. Its losses are logged under ``model/``.
    * **Planning.** After every real step, once the model is trained, ``planning_steps`` states
      (per environment) are drawn from the replay buffer, an action is chosen for each
      (``imagined_actions``), and one random ensemble member per sample predicts the next state,
      reward and termination. These imagined transitions go into a separate model buffer of size
      ``model_buffer_size``. With ``planning_updates > 0`` the agent also makes that many
      Q-learning updates on purely imagined batches per real step (Dyna-Q's planning updates).
      Planning updates also advance the target network: it is synced after every
      ``planning_target_update_interval`` of them, by default as many updates as DQN makes
      between two syncs, so that the target lags planning by the same number of updates. (With
      SB3's schedule alone the target would stay frozen for the whole ``target_update_interval``
      however many planning updates are made, and planning could not carry values further.)
    * **Q-learning** on mixed batches: a fraction ``real_ratio`` of each batch comes from the
      real replay buffer, the rest from the model buffer; the DQN loss (Huber on the one-step
      TD error against the target network) is otherwise SB3's.

    Observations must be a flat ``Box`` (the model predicts them), actions ``Discrete``.
    All DQN arguments keep SB3's meaning and defaults; the Dyna arguments are:

    :param planning_steps: imagined transitions generated per real step and environment
    :param real_ratio: fraction of real transitions in every Q-learning batch (1 is DQN)
    :param planning_updates: extra Q-learning updates on purely imagined batches per environment
        step (Dyna-Q's planning updates), run with DQN's ``gradient_steps`` at every ``train_freq``;
        0 (default): imagined data enters only through the mixed batches
    :param planning_target_update_interval: planning updates between two extra target-network
        syncs (SB3's syncs every ``target_update_interval`` environment steps continue). Default:
        the number of Q-learning updates DQN makes between two of its syncs,
        ``target_update_interval / n_envs * gradient_steps / train_freq``
    :param model_train_freq: environment steps between two fits of the model
    :param model_learning_starts: environment steps before the first fit (default: ``learning_starts``)
    :param rollout_length: model steps per imagined transition: 1 is a one-step transition;
        k > 1 rolls on greedily and stores a k-step return with discount ``planning_gamma ** k``
    :param model_buffer_size: capacity of the imagined-transition buffer
    :param model_gradient_steps: gradient steps per model fit (minibatches drawn from each
        member's bootstrap resample of all real transitions)
    :param model_batch_size: minibatch size of the model fit
    :param imagined_actions: actions of imagined transitions: ``"uniform"`` (uniformly random),
        ``"policy"`` (the current epsilon-greedy policy) or ``"replay"`` (the real action taken in
        that state, as tabular Dyna-Q does)
    :param model_noise: sample the chosen member's Gaussian (PETS / MBPO); ``False`` uses that
        member's mean prediction, which suits deterministic environments
    :param exploration_bonus: ``kappa`` > 0 adds ``kappa`` times the ensemble's disagreement about
        the next state (:meth:`~sb3_ext.common.dynamics.ProbabilisticEnsemble.disagreement`) to
        every imagined reward: a deep counterpart of Dyna-Q+'s bonus, large for state-action
        pairs unlike those in the replay buffer (untried actions) and fading as they are tried, so
        that planning keeps the agent trying them. 0 (default): no bonus
    :param planning_gamma: discount of the bootstrap term of imagined transitions (default:
        ``gamma``; real transitions always use ``gamma``). A smaller one shortens the horizon over
        which the model's errors compound: a reward error ``e`` on an imagined transition that the
        agent can repeat is worth ``e / (1 - planning_gamma)`` to Q-learning, so that with
        ``gamma=0.99`` a few tenths of error outweigh a goal reward of 10 (planning with a smaller
        discount than the task's when the model is inaccurate: Jiang et al. 2015)
    :param model_class: the dynamics model class
    :param model_kwargs: keyword arguments of ``model_class`` (e.g. ``n_members``, ``hidden_sizes``);
        ``nll_beta`` defaults to 0.5 here (beta-NLL, so that sparse rewards are learned)
    """

    log_name: ClassVar[str] = "Dyna"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    dynamics_model: ProbabilisticEnsemble
    model_buffer: ModelReplayBuffer

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        planning_steps: int = 10,
        real_ratio: float = 0.5,
        planning_updates: int = 0,
        planning_target_update_interval: int | None = None,
        rollout_length: int = 1,
        model_train_freq: int = 250,
        model_learning_starts: int | None = None,
        model_buffer_size: int = 20_000,
        model_gradient_steps: int = 200,
        model_batch_size: int = 256,
        imagined_actions: str = "uniform",
        model_noise: bool = True,
        exploration_bonus: float = 0.0,
        planning_gamma: float | None = None,
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
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if self.env is not None and (
            not isinstance(self.observation_space, spaces.Box) or len(self.observation_space.shape) != 1
        ):
            raise ValueError(
                f"Dyna needs a flat Box observation space (its model predicts observations), got {self.observation_space}; "
                "use TabularDynaQ for Discrete observation spaces"
            )
        self.planning_steps = check_int("planning_steps", planning_steps, 0)
        self.real_ratio = check_float("real_ratio", real_ratio, 0.0, 1.0)
        self.planning_updates = check_int("planning_updates", planning_updates, 0)
        self.rollout_length = check_int("rollout_length", rollout_length, 1)
        self._pending_planning_updates = 0
        if planning_target_update_interval is not None:
            check_int("planning_target_update_interval", planning_target_update_interval, 1)
        self.planning_target_update_interval = planning_target_update_interval
        self._planning_updates_done = 0
        self.model_train_freq = check_int("model_train_freq", model_train_freq, 1)
        starts = learning_starts if model_learning_starts is None else model_learning_starts
        self.model_learning_starts = check_int("model_learning_starts", starts, 0)
        self.model_buffer_size = check_int("model_buffer_size", model_buffer_size, 1)
        self.model_gradient_steps = check_int("model_gradient_steps", model_gradient_steps, 1)
        self.model_batch_size = check_int("model_batch_size", model_batch_size, 1)
        self.imagined_actions = check_choice("imagined_actions", imagined_actions, IMAGINED_ACTIONS)
        self.model_noise = check_bool("model_noise", model_noise)
        self.exploration_bonus = check_float("exploration_bonus", exploration_bonus, 0.0)
        if planning_gamma is not None:
            check_float("planning_gamma", planning_gamma, 0.0, 1.0)
        self.planning_gamma = planning_gamma
        if not (isinstance(model_class, type) and issubclass(model_class, ProbabilisticEnsemble)):
            raise ValueError(
                f"model_class must be ProbabilisticEnsemble or a subclass of it, got {model_class!r}"
            )
        self.model_class = model_class
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise ValueError(
                f"model_kwargs must be a dict of ProbabilisticEnsemble arguments or None, got {model_kwargs!r}"
            )
        # beta-NLL by default: with the plain Gaussian NLL a sparse reward (a goal bonus) is
        # explained away as noise and never imagined.
        self.model_kwargs = {"nll_beta": 0.5, **(model_kwargs or {})}
        self._model_fits = 0
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        if type(self.replay_buffer) is not ReplayBuffer or self.optimize_memory_usage:
            raise ValueError(
                "Dyna needs SB3's plain ReplayBuffer without optimize_memory_usage (the model is fitted "
                f"to its arrays), got {type(self.replay_buffer).__name__}"
            )
        self.dynamics_model = self.model_class(
            self.observation_space, self.action_space, device=self.device, **self.model_kwargs
        )
        self.model_buffer = ModelReplayBuffer(
            self.model_buffer_size,
            self.observation_space,
            self.action_space,
            self.device,
            gamma=self._planning_gamma,
        )
        if getattr(self, "_model_rng", None) is None:
            self._model_rng = np.random.default_rng(self.seed)
        if self.planning_target_update_interval is None:
            # DQN's Q-learning updates per target sync: gradient_steps every train_freq env calls
            # (-1: as many as calls made), the target synced every target_update_interval // n_envs
            # calls (SB3's schedule).
            calls = self.train_freq.frequency if self.train_freq.unit == TrainFrequencyUnit.STEP else 1
            per_call = self.gradient_steps / calls if self.gradient_steps > 0 else 1.0
            sync_calls = max(self.target_update_interval // self.n_envs, 1)
            self.planning_target_update_interval = max(1, round(sync_calls * per_call))
        low = th.as_tensor(self.observation_space.low, dtype=th.float32, device=self.device)
        high = th.as_tensor(self.observation_space.high, dtype=th.float32, device=self.device)
        self._obs_bounds = (low, high)

    @property
    def _planning_gamma(self) -> float:
        return self.gamma if self.planning_gamma is None else self.planning_gamma

    # ------------------------------------------------------------------ model learning
    def real_transitions(self) -> Transitions:
        """Every real transition stored so far, batch-first: obs, actions, next_obs, rewards, terminations.

        Time-limit truncations are not terminations (SB3's ``timeouts``)."""
        return replay_transitions(self.replay_buffer)

    def train_model(self) -> dict[str, float]:
        """Fit the dynamics model to the real replay buffer and log its losses under ``model/``."""
        stats = self.dynamics_model.fit(
            *self.real_transitions(),
            n_epochs=self.model_gradient_steps,  # every epoch has >= 1 step: the step cap decides
            batch_size=self.model_batch_size,
            max_gradient_steps=self.model_gradient_steps,
            generator=self._model_rng,
        )
        self._model_fits += 1
        for key, value in stats.items():
            self.logger.record(f"model/{key}", value)
        self.logger.record("model/fits", self._model_fits, exclude="tensorboard")
        return stats

    @th.no_grad()
    def imagine(self, n: int) -> None:
        """Add ``n`` transitions imagined by the model from replayed real states.

        The first action follows ``imagined_actions``; with ``rollout_length`` k > 1 the model then
        rolls on for k - 1 steps with the greedy action of the current Q-network, and the stored
        transition is ``(s_0, a_0, sum_t g^t r_t, s_k)`` with discount ``g^k`` (``g``: ``planning_gamma``,
        by default ``gamma``), cut at the first predicted termination (a k-step target, as in
        model-based value expansion).
        """
        real = self.replay_buffer.sample(n)
        obs = real.observations.float()
        if self.imagined_actions == "replay":
            first_actions = real.actions.reshape(-1).long()
        else:
            first_actions = th.randint(int(self.action_space.n), (n,), device=self.device)
            if self.imagined_actions == "policy":
                greedy = self._greedy_actions(obs)
                explore = th.rand(n, device=self.device) < self.exploration_rate
                first_actions = th.where(explore, first_actions, greedy)
        returns = th.zeros(n, device=self.device)
        alive = th.ones(n, dtype=th.bool, device=self.device)
        state, actions, discount = obs, first_actions, 1.0
        for step in range(self.rollout_length):
            if step > 0:
                actions = self._greedy_actions(state)
            next_obs, rewards, terminated = self.dynamics_model.sample(
                state, actions, deterministic=not self.model_noise
            )
            if self.exploration_bonus > 0.0:
                bonus = self.exploration_bonus * self.dynamics_model.disagreement(state, actions)
                rewards = bonus if rewards is None else rewards + bonus
                if step == 0:
                    self.logger.record("model/exploration_bonus", bonus.mean().item())
            next_obs = th.clamp(next_obs, *self._obs_bounds)
            if rewards is not None:
                returns += discount * rewards * alive
            discount *= self._planning_gamma
            if terminated is not None:
                alive &= ~terminated
            state = next_obs  # rows that terminated keep rolling, but their bootstrap term is masked
            if not alive.any():
                break
        discounts = th.full((n,), discount, device=self.device)
        self.model_buffer.extend(
            *(x.cpu().numpy() for x in (obs, first_actions, state, returns, (~alive).float(), discounts))
        )

    def _greedy_actions(self, obs: th.Tensor) -> th.Tensor:
        """Greedy actions of the current Q-network for raw (unnormalized) observations."""
        if self._vec_normalize_env is not None:
            obs = self.policy.obs_to_tensor(self._vec_normalize_env.normalize_obs(obs.cpu().numpy()))[0]
        return self.q_net(obs).argmax(dim=1)

    def _on_step(self) -> None:
        """DQN's per-step work, then (re)fit the model when due and imagine from it."""
        super()._on_step()
        if self.num_timesteps < self.model_learning_starts:
            return
        if self._model_fits == 0 or self._n_calls % max(self.model_train_freq // self.n_envs, 1) == 0:
            self.train_model()
        if self.planning_steps > 0:
            self.imagine(self.planning_steps * self.n_envs)
            self._pending_planning_updates += self.planning_updates * self.n_envs

    # ------------------------------------------------------------------ Q-learning
    def mixed_batch(self, batch_size: int) -> tuple[ReplayBufferSamples, int]:
        """A batch with ``round(real_ratio * batch_size)`` real transitions and imagined ones for the
        rest (all real while the model buffer is empty); returns it and the number imagined."""
        n_imagined = (
            0 if self.model_buffer.size() == 0 else batch_size - int(round(self.real_ratio * batch_size))
        )
        if n_imagined == 0:
            return self.replay_buffer.sample(batch_size, env=self._vec_normalize_env), 0
        imagined = self.model_buffer.sample(n_imagined, env=self._vec_normalize_env)
        if n_imagined == batch_size:
            return imagined, n_imagined
        real = self.replay_buffer.sample(batch_size - n_imagined, env=self._vec_normalize_env)
        fields = ("observations", "actions", "next_observations", "dones", "rewards")
        mixed = {
            name: th.cat([getattr(real, name), getattr(imagined, name).to(getattr(real, name).dtype)])
            for name in fields
        }
        real_discounts = th.full_like(real.rewards, self.gamma)
        mixed["discounts"] = th.cat([real_discounts, imagined.discounts.to(real_discounts.dtype)])
        return ReplayBufferSamples(**mixed), n_imagined

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, imagined = [], 0
        for _ in range(gradient_steps):
            data, n_imagined = self.mixed_batch(batch_size)
            imagined += n_imagined
            losses.append(self._q_update(data))
        # Planning updates owed for the environment steps since the last call, on imagined data only.
        planning_updates, self._pending_planning_updates = self._pending_planning_updates, 0
        if self.model_buffer.size() == 0:
            planning_updates = 0
        for _ in range(planning_updates):
            losses.append(self._q_update(self.model_buffer.sample(batch_size, env=self._vec_normalize_env)))
            self._planning_updates_done += 1
            if self._planning_updates_done % self.planning_target_update_interval == 0:
                polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps + planning_updates
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if losses:
            self.logger.record("train/loss", np.mean(losses))
        if gradient_steps > 0:
            self.logger.record("train/imagined_fraction", imagined / (gradient_steps * batch_size))
        self.logger.record("train/planning_updates", planning_updates)
        self.logger.record("train/model_buffer_size", self.model_buffer.size())

    def _q_update(self, data: ReplayBufferSamples) -> float:
        """One DQN gradient step (Huber loss on the one-step TD error against the target network)."""
        target_q = q_learning_target(data, self.q_net_target, self.gamma)
        current_q = th.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
        loss = F.smooth_l1_loss(current_q, target_q)
        self.policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        return loss.item()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "model_buffer", "_obs_bounds"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer", "dynamics_model", "dynamics_model.optimizer"], []
