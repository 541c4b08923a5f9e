"""Dreamer (Hafner et al. 2020, 2021, 2023) as a Stable-Baselines3 off-policy algorithm."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update

from sb3_ext.common.rssm import RSSMState
from sb3_ext.common.sequence_buffer import SequenceReplayBuffer
from sb3_ext.common.sequence_learning import TrainRatioMixin
from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_choice,
    check_float,
    check_int,
    reject_policy_kwargs,
)
from sb3_ext.dreamer.policies import CnnPolicy, DreamerPolicy, MlpPolicy

__all__ = ["ACTOR_GRADIENTS", "Dreamer", "lambda_returns", "update_return_range"]

SelfDreamer = TypeVar("SelfDreamer", bound="Dreamer")

#: How the actor's gradient is estimated: ``"auto"`` picks dynamics for Box, REINFORCE for Discrete.
ACTOR_GRADIENTS = ("auto", "dynamics", "reinforce")


def lambda_returns(
    rewards: th.Tensor, values: th.Tensor, continuations: th.Tensor, gamma: float, lambda_: float
) -> th.Tensor:
    """
    TD(lambda) returns along imagined trajectories (DreamerV1 eq. 6, DreamerV3 eq. 7):

    ``R_t = r_{t+1} + gamma c_{t+1} ((1 - lambda) v(s_{t+1}) + lambda R_{t+1})``, ``R_H = v(s_H)``.

    :param rewards: ``(H, N)``, ``rewards[t] = r_{t+1}`` predicted at ``s_{t+1}``
    :param values: ``(H + 1, N)``, ``v(s_0) .. v(s_H)``
    :param continuations: ``(H, N)``, ``continuations[t] = c_{t+1}`` (probability of going on)
    :return: ``(H, N)``, ``R_0 .. R_{H-1}``
    """
    horizon = len(rewards)
    returns = []
    last = values[-1]
    for t in reversed(range(horizon)):
        last = rewards[t] + gamma * continuations[t] * ((1 - lambda_) * values[t + 1] + lambda_ * last)
        returns.append(last)
    return th.stack(returns[::-1])


def update_return_range(
    returns: th.Tensor,
    low: th.Tensor,
    high: th.Tensor,
    decay: float = 0.99,
    percentiles: tuple[float, float] = (5.0, 95.0),
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """
    DreamerV3's return normalization: exponential moving averages of the 5th and 95th
    percentiles of the returns in the batch, and the scale ``max(1, high - low)`` that returns
    and advantages are divided by. Returns ``(low, high, scale)``.
    """
    quantiles = th.quantile(
        returns.detach().flatten().float(), th.tensor(percentiles, device=returns.device) / 100.0
    )
    low = decay * low + (1 - decay) * quantiles[0]
    high = decay * high + (1 - decay) * quantiles[1]
    return low, high, th.clamp(high - low, min=1.0)


class Dreamer(TrainRatioMixin, OffPolicyAlgorithm):
    """
    Dreamer: a latent world model learned from replayed sequences, and an actor-critic learned
    purely from trajectories imagined in its latent space (DreamerV1, Hafner et al. ICLR 2020;
    DreamerV2, ICLR 2021; DreamerV3, 2023).

    Every environment step adds to a credit of ``train_ratio`` replayed steps; each update
    replays ``batch_size x sequence_length`` steps, so ``train_ratio / (batch_size *
    sequence_length)`` updates happen per environment step (after ``learning_starts`` steps of
    uniformly random actions). One update:

    1. world model: one gradient step on
       :meth:`~sb3_ext.common.world_model.LatentWorldModel.loss` of a batch of windows from the
       :class:`~sb3_ext.common.sequence_buffer.SequenceReplayBuffer`;
    2. imagination: from every posterior state of that batch, ``imagination_horizon`` steps of
       the actor in the model's prior, with predicted rewards and continuation probabilities;
    3. critic: regression of ``v(s_t)`` onto the lambda-returns (:func:`lambda_returns`,
       ``gamma``, ``gae_lambda``) bootstrapped with the slow critic, which tracks the critic by
       Polyak averaging with ``tau`` (DreamerV3: 0.02 per update);
    4. actor: returns normalized by ``max(1, P95 - P5)`` of their running percentiles
       (:func:`update_return_range`, DreamerV3), plus ``ent_coef`` times the entropy; the gradient
       flows back through the learned dynamics for Box actions (DreamerV1) and is REINFORCE with
       the critic as baseline for Discrete ones (DreamerV2). Imagined steps are weighted by the
       cumulative predicted discount ``prod gamma c``.

    Acting runs the actor on the posterior state filtered from the observations;
    ``predict(obs, state, episode_start, deterministic)`` carries that recurrent state like
    sb3-contrib's ``RecurrentPPO``, so ``evaluate_policy`` works unchanged.

    Logged: ``train/reconstruction_loss``, ``train/reward_loss``, ``train/continuation_loss``,
    ``train/kl_loss``, ``train/kl``, ``train/world_model_loss``, ``train/actor_loss``,
    ``train/critic_loss``, ``train/actor_entropy``, ``train/imagined_return``,
    ``train/return_scale``, ``train/n_updates``.

    :param policy: ``"MlpPolicy"`` / ``"CnnPolicy"`` (the same :class:`DreamerPolicy`: the encoder
        follows from the observation space) or a :class:`DreamerPolicy` subclass; its
        ``policy_kwargs`` hold ``net_arch`` (actor and critic) and ``world_model_kwargs``
        (:class:`~sb3_ext.common.world_model.LatentWorldModel`: ``latent``, sizes, ``symlog``,
        KL scales, ...)
    :param env: the environment (Gymnasium env, registered id or VecEnv): flat ``Box`` or
        ``uint8`` image observations, ``Box`` or ``Discrete`` actions
    :param learning_rate: learning rate of the world model (constant or schedule)
    :param actor_learning_rate: learning rate of the actor
    :param critic_learning_rate: learning rate of the critic
    :param buffer_size: number of time steps kept for replay
    :param learning_starts: steps of uniformly random actions before learning starts
    :param batch_size: sequences per update
    :param sequence_length: steps per replayed sequence (>= 2)
    :param train_ratio: replayed steps per environment step (> 0), the speed/efficiency knob
    :param imagination_horizon: imagined steps per start state (>= 1; DreamerV1-3: 15)
    :param gamma: discount factor (0.99)
    :param gae_lambda: lambda of the lambda-returns (0.95)
    :param tau: Polyak coefficient of the slow critic per update
    :param ent_coef: entropy bonus of the actor (DreamerV3: 3e-4)
    :param actor_gradient: ``"auto"``, ``"dynamics"`` (Box only) or ``"reinforce"``
    :param return_decay: decay of the running return percentiles (DreamerV3: 0.99)
    :param model_max_grad_norm: gradient clipping of the world model (DreamerV3: 1000)
    :param actor_critic_max_grad_norm: gradient clipping of the actor and the critic (DreamerV3: 100)
    :param train_freq: collect this many steps per environment between update rounds
    :param stats_window_size: episodes the rollout statistics average over
    :param tensorboard_log: the log location for TensorBoard (if None, no logging)
    :param policy_kwargs: keyword arguments of the policy
    :param verbose: 0 no output, 1 info, 2 debug
    :param seed: seed of the pseudo-random generators
    :param device: device of the networks ("cpu", "cuda", "auto")
    :param _init_setup_model: whether to build the networks at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    #: The default ``tb_log_name`` of :meth:`learn`.
    log_name: ClassVar[str] = "Dreamer"
    policy: DreamerPolicy
    replay_buffer: SequenceReplayBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[DreamerPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float = 8e-5,
        critic_learning_rate: float = 8e-5,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        batch_size: int = 16,
        sequence_length: int = 64,
        train_ratio: float = 64.0,
        imagination_horizon: int = 15,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        tau: float = 0.02,
        ent_coef: float = 3e-4,
        actor_gradient: str = "auto",
        return_decay: float = 0.99,
        model_max_grad_norm: float = 1000.0,
        actor_critic_max_grad_norm: float = 100.0,
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
        self.imagination_horizon = check_int("imagination_horizon", imagination_horizon, 1)
        self.actor_learning_rate = check_float(
            "actor_learning_rate", actor_learning_rate, 0.0, low_inclusive=False
        )
        self.critic_learning_rate = check_float(
            "critic_learning_rate", critic_learning_rate, 0.0, low_inclusive=False
        )
        self.gae_lambda = check_float("gae_lambda", gae_lambda, 0.0, 1.0)
        self.ent_coef = check_float("ent_coef", ent_coef, 0.0)
        self.actor_gradient = check_choice("actor_gradient", actor_gradient, ACTOR_GRADIENTS)
        self.return_decay = check_float("return_decay", return_decay, 0.0, 1.0)
        self.model_max_grad_norm = check_float(
            "model_max_grad_norm", model_max_grad_norm, 0.0, low_inclusive=False
        )
        self.actor_critic_max_grad_norm = check_float(
            "actor_critic_max_grad_norm", actor_critic_max_grad_norm, 0.0, low_inclusive=False
        )
        check_int("train_freq", train_freq, 1)
        reject_policy_kwargs("Dreamer", policy_kwargs, ("actor_learning_rate", "critic_learning_rate"))
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=check_float("tau", tau, 0.0, 1.0, low_inclusive=False),
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=1,
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
        if self.actor_gradient == "dynamics" and isinstance(self.action_space, spaces.Discrete):
            raise ValueError("actor_gradient='dynamics' needs a Box action space; use 'reinforce' or 'auto'")
        self._last_state: tuple[np.ndarray, ...] | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        # A new dict: SB3 keeps the caller's policy_kwargs object, which must not change.
        self.policy_kwargs = {
            **self.policy_kwargs,
            "actor_learning_rate": self.actor_learning_rate,
            "critic_learning_rate": self.critic_learning_rate,
        }
        super()._setup_model()

    @property
    def uses_dynamics_gradient(self) -> bool:
        if self.actor_gradient == "auto":
            return isinstance(self.action_space, spaces.Box)
        return self.actor_gradient == "dynamics"

    # ------------------------------------------------------------------ acting
    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Action(s) and the recurrent state ``(deter, stoch, previous action)`` to pass back next time."""
        return self.policy.predict(observation, state, episode_start, deterministic)

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform actions during warm-up, then the actor on the filtered state (carried across steps)."""
        if self.num_timesteps < learning_starts:
            unscaled = np.array([self.action_space.sample() for _ in range(n_envs)])
            # The filter starts afresh, as at an episode start, when the actor takes over.
            self._last_state = None
        else:
            starts = np.asarray(self._last_episode_starts, dtype=bool)
            unscaled, self._last_state = self.predict(
                self._last_obs, self._last_state, starts, deterministic=False
            )
        if isinstance(self.action_space, spaces.Box):
            buffer_action = self.policy.scale_action(unscaled)
            return self.policy.unscale_action(buffer_action), buffer_action
        return unscaled, unscaled

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        self._last_episode_starts = np.asarray(dones, dtype=bool)

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, *args: Any, **kwargs: Any):
        reset = kwargs.get("reset_num_timesteps", args[0] if args else True)
        result = super()._setup_learn(total_timesteps, callback, *args, **kwargs)
        if reset or self._last_state is None:
            # env.reset() happened (or the model was loaded): every stream starts a new episode.
            self._last_state = None
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
            self.replay_buffer.start_new_episodes()
        return result

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._last_state = None

    # ------------------------------------------------------------------ learning
    def update(self, batch) -> dict[str, float]:
        """One update on a :class:`~sb3_ext.common.sequence_buffer.SequenceBatch`; returns the logged values."""
        policy = self.policy
        wm = policy.world_model
        model_loss, terms, posteriors = wm.compute_loss(batch)
        policy.optimizer.zero_grad()
        model_loss.backward()
        th.nn.utils.clip_grad_norm_(wm.parameters(), self.model_max_grad_norm)
        policy.optimizer.step()

        start = posteriors.detach().map(lambda t: t.reshape(-1, *t.shape[2:]))
        losses = self.actor_critic_losses(start)
        policy.actor_optimizer.zero_grad()
        policy.critic_optimizer.zero_grad()
        (losses["actor_loss"] + losses["critic_loss"]).backward()
        th.nn.utils.clip_grad_norm_(policy.actor.parameters(), self.actor_critic_max_grad_norm)
        th.nn.utils.clip_grad_norm_(policy.critic.parameters(), self.actor_critic_max_grad_norm)
        policy.actor_optimizer.step()
        policy.critic_optimizer.step()
        polyak_update(policy.critic.parameters(), policy.critic_target.parameters(), self.tau)
        return {
            **{name: value.item() for name, value in terms.items()},
            "world_model_loss": model_loss.item(),
            **{name: value.item() for name, value in losses.items()},
        }

    def imagine(self, start: RSSMState) -> tuple[th.Tensor, th.Tensor, list]:
        """
        Imagine ``imagination_horizon`` steps of the actor from ``start`` (``N`` states): returns
        features ``(H + 1, N, F)``, actions ``(H, N, A)`` and the actor's distributions. The world
        model's parameters get no gradient; the states do (dynamics backpropagation).
        """
        wm, actor = self.policy.world_model, self.policy.actor
        dynamics = self.uses_dynamics_gradient
        wm.requires_grad_(False)
        try:
            state = start
            features = [wm.features(state)]
            actions, dists = [], []
            for _ in range(self.imagination_horizon):
                action, dist = actor.act(features[-1] if dynamics else features[-1].detach())
                state = wm.rssm.imagine_step(state, action if dynamics else action.detach())
                features.append(wm.features(state))
                actions.append(action)
                dists.append(dist)
        finally:
            wm.requires_grad_(True)
        return th.stack(features), th.stack(actions), dists

    def actor_critic_losses(self, start: RSSMState) -> dict[str, th.Tensor]:
        """Actor and critic losses on trajectories imagined from ``start`` (see the class docstring)."""
        policy = self.policy
        wm = policy.world_model
        features, actions, dists = self.imagine(start)
        wm.requires_grad_(False)
        try:
            rewards = wm.reward(features[1:])
            continuations = wm.continuation(features[1:])
        finally:
            wm.requires_grad_(True)
        target_values = policy.value(features, target=True)
        returns = lambda_returns(rewards, target_values, continuations, self.gamma, self.gae_lambda)
        weights = th.cumprod(
            th.cat([th.ones_like(continuations[:1]), self.gamma * continuations[:-1]]), 0
        ).detach()
        low, high, scale = update_return_range(
            returns, policy.return_low, policy.return_high, self.return_decay
        )
        policy.return_low.copy_(low)
        policy.return_high.copy_(high)

        entropy = th.stack([policy.actor.entropy(d) for d in dists])
        if self.uses_dynamics_gradient:
            objective = returns / scale
        else:
            log_probs = th.stack(
                [policy.actor.log_prob(d, a.detach()) for d, a in zip(dists, actions, strict=True)]
            )
            baseline = policy.value(features[:-1].detach(), target=True)
            objective = log_probs * ((returns - baseline) / scale).detach()
        actor_loss = -(weights * (objective + self.ent_coef * entropy)).mean()
        values = policy.value(features[:-1].detach())
        critic_loss = 0.5 * (weights * (values - returns.detach()) ** 2).mean()
        return dict(
            actor_loss=actor_loss,
            critic_loss=critic_loss,
            actor_entropy=entropy.mean().detach(),
            imagined_return=returns.mean().detach(),
            return_scale=scale.detach(),
        )

    # ------------------------------------------------------------------ saving
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_last_state"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer", "policy.actor_optimizer", "policy.critic_optimizer"], []
