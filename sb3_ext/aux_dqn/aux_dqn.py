"""AuxDQN: DQN with auxiliary tasks on a shared encoder and data augmentation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.dqn import DQN
from torch.nn import functional as F

from sb3_ext.aux_dqn.augmentation import gaussian_noise, random_shift, resolve_augmentation
from sb3_ext.aux_dqn.policies import AuxDQNPolicy, CnnPolicy, MlpPolicy
from sb3_ext.common.buffers import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from sb3_ext.common.learn import NamedLearnMixin
from sb3_ext.common.td import q_learning_target
from sb3_ext.common.validation import check_algorithm_arguments, check_bool, check_nonnegative
from sb3_ext.per.mixin import PrioritizedReplayMixin, weighted_mean

AUX_TASKS = ("reward", "latent", "inverse")


class AuxDQN(NamedLearnMixin, DQN):
    """
    DQN with auxiliary tasks and data augmentation.

    The Q-network's encoder (features extractor + hidden layers of the Q MLP) is shared with three
    auxiliary heads trained jointly with the TD loss, so that they shape the representation the
    Q-values are read from (see :mod:`sb3_ext.aux_dqn.policies`):

    - reward prediction (UNREAL, https://arxiv.org/abs/1611.05397): Huber loss of ``R(z_t, a_t)``;
    - next-latent prediction (SPR, https://arxiv.org/abs/2007.05929): ``2 - 2 cos`` between
      ``T(z_t, a_t)`` and the next latent under a Polyak-averaged target encoder;
    - inverse dynamics (https://arxiv.org/abs/1705.05363): cross-entropy of ``a_t`` given
      ``(z_t, z_{t+1})``.

    The loss of one gradient step is
    ``L = L_TD + reward_coef * L_reward + latent_coef * L_latent + inverse_coef * L_inverse``.
    Replayed observations and next observations are augmented independently before every loss,
    TD target included (DrQ, https://arxiv.org/abs/2004.13649): a random shift for images, Gaussian
    noise for vector observations, nothing for ``Discrete`` / index observations.
    With all coefficients 0, ``augmentation=None`` and ``double_q=False`` the update is DQN's.

    Each auxiliary loss is logged as ``train/<task>_loss`` (before weighting); ``train/loss`` is the
    TD loss, as in DQN.

    :param policy: The policy model to use (``MlpPolicy``, ``CnnPolicy`` or an :class:`AuxDQNPolicy` subclass)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function
        of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient of the target Q-network ("Polyak update", between 0 and 1),
        default 1 for a hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps. Alternatively pass a tuple of frequency and unit
        like ``(5, "step")`` or ``(2, "episode")``.
    :param gradient_steps: How many gradient steps to do after each rollout (see ``train_freq``)
        Set to ``-1`` means to do as many gradient steps as steps done in the environment
        during the rollout.
    :param replay_buffer_class: Replay buffer class to use. If ``None``, SB3's ``ReplayBuffer``
        (or ``NStepReplayBuffer`` when ``n_steps > 1``).
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation.
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
        at a cost of more complexity.
    :param n_steps: n-step returns for the TD target (as in DQN)
    :param target_update_interval: update the target Q-network every ``target_update_interval``
        environment steps.
    :param exploration_fraction: fraction of entire training period over which the exploration rate is reduced
    :param exploration_initial_eps: initial value of random action probability
    :param exploration_final_eps: final value of random action probability
    :param max_grad_norm: The maximum value for the gradient clipping (of the total loss)
    :param reward_coef: weight of the reward-prediction loss (>= 0; 0 disables the task)
    :param latent_coef: weight of the next-latent-prediction loss (>= 0; 0 disables the task)
    :param inverse_coef: weight of the inverse-dynamics loss (>= 0; 0 disables the task)
    :param target_encoder_tau: Polyak coefficient of the target encoder used by next-latent
        prediction, applied after every gradient step (in (0, 1]; 1 copies the online encoder)
    :param double_q: use the Double DQN target (van Hasselt et al. 2016): the online network picks
        the next action, the target network evaluates it
    :param augmentation: ``"auto"`` (random shift for images, Gaussian noise for other ``Box``
        observations, none for ``Discrete``/``MultiDiscrete``/``MultiBinary``), ``"shift"``,
        ``"noise"`` or ``None`` (no augmentation)
    :param shift_pad: padding in pixels of the random shift (``>= 0``; DrQ uses 4)
    :param noise_std: standard deviation of the Gaussian noise, in observation units (``>= 0``)
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
        (e.g. ``net_arch``, ``aux_net_arch``)
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    log_name: ClassVar[str] = "AuxDQN"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
    }
    policy: AuxDQNPolicy

    def __init__(
        self,
        policy: str | type[AuxDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        reward_coef: float = 0.1,
        latent_coef: float = 0.1,
        inverse_coef: float = 0.1,
        target_encoder_tau: float = 0.01,
        double_q: bool = False,
        augmentation: str | None = "auto",
        shift_pad: int = 4,
        noise_std: float = 0.01,
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
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
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
        self.reward_coef = check_nonnegative("reward_coef", reward_coef)
        self.latent_coef = check_nonnegative("latent_coef", latent_coef)
        self.inverse_coef = check_nonnegative("inverse_coef", inverse_coef)
        self.noise_std = check_nonnegative("noise_std", noise_std)
        if (
            isinstance(target_encoder_tau, bool)
            or not isinstance(target_encoder_tau, int | float)
            or not (0.0 < target_encoder_tau <= 1.0)
        ):
            raise ValueError(f"target_encoder_tau must be a float in (0, 1], got {target_encoder_tau!r}")
        self.target_encoder_tau = float(target_encoder_tau)
        if isinstance(shift_pad, bool) or not isinstance(shift_pad, int | np.integer) or shift_pad < 0:
            raise ValueError(f"shift_pad must be an int >= 0, got {shift_pad!r}")
        self.shift_pad = int(shift_pad)
        self.double_q = check_bool("double_q", double_q)
        self.augmentation = augmentation

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        # "auto" is resolved against the (possibly transposed) observation space; raises on a mismatch.
        self._augmentation = resolve_augmentation(self.augmentation, self.observation_space)
        buffer_class = self.replay_buffer_class
        if (
            isinstance(buffer_class, type)
            and issubclass(buffer_class, PrioritizedReplayBuffer)
            and not isinstance(self, PrioritizedReplayMixin)
        ):
            raise ValueError(
                "replay_buffer_class=PrioritizedReplayBuffer needs importance weights and priority updates: "
                "use PERAuxDQN instead of AuxDQN"
            )
        super()._setup_model()
        if not isinstance(self.policy, AuxDQNPolicy):
            raise ValueError(
                f"AuxDQN needs an AuxDQNPolicy (MlpPolicy or CnnPolicy), got {type(self.policy).__name__}"
            )
        if self.aux_coefs and len(self.policy.encoder_parameters()) == 0:
            raise ValueError(
                "the auxiliary tasks need a shared encoder with parameters, but the features extractor has none "
                "and policy_kwargs['net_arch'] is empty: give net_arch at least one hidden layer"
            )

    @property
    def aux_coefs(self) -> dict[str, float]:
        """The enabled auxiliary tasks and their weights."""
        coefs = {"reward": self.reward_coef, "latent": self.latent_coef, "inverse": self.inverse_coef}
        return {task: coef for task, coef in coefs.items() if coef > 0}

    def augment(self, observations: th.Tensor) -> th.Tensor:
        """
        Apply this model's augmentation to a batch of raw replayed observations.

        :param observations: batch as sampled from the replay buffer
        :return: augmented batch (the input itself when augmentation is off)
        """
        if self._augmentation == "shift":
            return random_shift(observations, self.shift_pad)
        if self._augmentation == "noise":
            return gaussian_noise(observations, self.noise_std)
        return observations

    # Hooks for the replay mechanism; PERAuxDQN overrides them with prioritized replay.
    def _sample_replay(self, batch_size: int) -> ReplayBufferSamples:
        return self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]

    def _td_loss(
        self, current_q_values: th.Tensor, target_q_values: th.Tensor, replay_data: Any
    ) -> th.Tensor:
        """Huber TD loss of one batch, as in DQN."""
        return F.smooth_l1_loss(current_q_values, target_q_values)

    def _after_gradient_step(self, replay_data: Any, td_errors: th.Tensor) -> None:
        """Called after each optimizer step with the batch and its TD errors (no-op for uniform replay)."""

    def _record_replay_statistics(self) -> None:
        """Log statistics of the replay mechanism at the end of ``train()`` (none for uniform replay)."""

    def td_target(self, replay_data: ReplayBufferSamples, next_observations: th.Tensor) -> th.Tensor:
        """
        TD target ``r + discount * (1 - done) * Q_target(s', a')`` with ``a' = argmax_a Q_target(s', a)``,
        or ``a' = argmax_a Q(s', a)`` (online network) when ``double_q``.

        :param replay_data: replayed batch (rewards, dones and, for n-step replay, discounts)
        :param next_observations: next observations, augmented if augmentation is on
        :return: targets, shape ``(batch, 1)``
        """
        online = self.q_net if self.double_q else None
        return q_learning_target(replay_data, self.q_net_target, self.gamma, next_observations, online)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        coefs = self.aux_coefs
        td_losses: list[float] = []
        aux_losses: dict[str, list[float]] = {task: [] for task in coefs}

        for _ in range(gradient_steps):
            replay_data = self._sample_replay(batch_size)
            observations = self.augment(replay_data.observations)
            next_observations = self.augment(replay_data.next_observations)
            target_q_values = self.td_target(replay_data, next_observations)

            latent = self.policy.latent(observations)
            current_q_values = th.gather(self.policy.q_head(latent), dim=1, index=replay_data.actions.long())
            loss = self._td_loss(current_q_values, target_q_values, replay_data)
            td_losses.append(loss.item())

            for task, coef in coefs.items():
                if task == "reward":
                    task_loss = self.policy.reward_loss(latent, replay_data.actions, replay_data.rewards)
                elif task == "latent":
                    task_loss = self.policy.latent_prediction_loss(
                        latent, replay_data.actions, next_observations
                    )
                else:
                    next_latent = self.policy.latent(next_observations)
                    task_loss = self.policy.inverse_dynamics_loss(latent, next_latent, replay_data.actions)
                task_loss = task_loss.mean()
                aux_losses[task].append(task_loss.item())
                loss = loss + coef * task_loss

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self._after_gradient_step(replay_data, target_q_values - current_q_values.detach())
            if "latent" in coefs:
                self.policy.update_target_encoder(self.target_encoder_tau)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(td_losses))
        for task, values in aux_losses.items():
            self.logger.record(f"train/{task}_loss", np.mean(values))
        self._record_replay_statistics()


class PERAuxDQN(PrioritizedReplayMixin, AuxDQN):
    """
    :class:`AuxDQN` with proportional prioritized experience replay (Schaul et al., 2016).

    Takes every argument of :class:`AuxDQN`; ``replay_buffer_class`` defaults to
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`, configured through
    ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4, final_beta=1.0, eps=1e-6)``
    (see :class:`~sb3_ext.per.mixin.PrioritizedReplayMixin`). Each transition's Huber TD loss is
    multiplied by its importance-sampling weight and its new priority is its ``|TD error|``
    (with the augmented observations used for the update). The auxiliary losses are plain means
    over the prioritized batch: they are supervised losses whose minimizer does not depend on
    the sampling distribution the way the TD fixed point does. ``n_steps`` must be 1.
    """

    def _sample_replay(self, batch_size: int) -> PrioritizedReplayBufferSamples:  # type: ignore[override]
        return self._sample_prioritized(batch_size)

    def _td_loss(
        self, current_q_values: th.Tensor, target_q_values: th.Tensor, replay_data: Any
    ) -> th.Tensor:
        huber = F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
        return weighted_mean(huber, replay_data.weights)

    def _after_gradient_step(self, replay_data: Any, td_errors: th.Tensor) -> None:
        self._update_priorities(replay_data, td_errors)

    def _record_replay_statistics(self) -> None:
        self._record_prioritized_replay()
