"""Policy of :class:`~sb3_ext.dreamer.Dreamer`: the latent world model, the actor and the critic
(with its slow copy) on the model's latent features, and the recurrent acting loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_ext.common.encoders import build_mlp
from sb3_ext.common.rssm import RSSMState
from sb3_ext.common.world_model import LatentWorldModel, action_vector_size

__all__ = ["Actor", "DreamerPolicy", "MlpPolicy", "CnnPolicy"]

#: Recurrent state threaded through ``predict``: ``(deter, stoch, previous action vector)``.
DreamerState = tuple[np.ndarray, np.ndarray, np.ndarray]


class Actor(nn.Module):
    """
    Actor on latent features. ``Box``: a Gaussian with mean ``tanh(mu)`` and standard deviation
    ``(max_std - min_std) * sigmoid(x + 2) + min_std`` whose samples are clipped to ``[-1, 1]``
    with straight-through gradients (DreamerV3's bounded normal, ``min_std=0.1``, ``max_std=1``);
    ``Discrete``: a categorical with 1% uniform mix (DreamerV3). Actions are the model's action
    vectors: scaled Box actions in ``[-1, 1]`` or one-hot ``Discrete`` actions.
    """

    def __init__(
        self,
        feature_size: int,
        action_space: spaces.Space,
        net_arch: list[int],
        min_std: float = 0.1,
        max_std: float = 1.0,
        unimix: float = 0.01,
    ) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.action_dim = action_vector_size(action_space)
        self.min_std, self.max_std, self.unimix = min_std, max_std, unimix
        self.net = build_mlp(feature_size, net_arch, self.action_dim * (1 if self.discrete else 2))

    def distribution(self, features: th.Tensor) -> th.distributions.Distribution:
        out = self.net(features)
        if self.discrete:
            probs = (1 - self.unimix) * th.softmax(out, -1) + self.unimix / self.action_dim
            return th.distributions.Categorical(probs=probs)
        mean, std = out.chunk(2, -1)
        std = (self.max_std - self.min_std) * th.sigmoid(std + 2.0) + self.min_std
        return th.distributions.Normal(th.tanh(mean), std)

    def act(
        self, features: th.Tensor, deterministic: bool = False
    ) -> tuple[th.Tensor, th.distributions.Distribution]:
        """``(action vector, distribution)``; Box samples are reparameterized (gradients flow)."""
        dist = self.distribution(features)
        if self.discrete:
            index = dist.probs.argmax(-1) if deterministic else dist.sample()
            return nn.functional.one_hot(index, self.action_dim).float(), dist
        if deterministic:
            return dist.mean, dist
        sample = dist.rsample()
        return sample + (sample.clamp(-1.0, 1.0) - sample).detach(), dist

    def log_prob(self, dist: th.distributions.Distribution, action: th.Tensor) -> th.Tensor:
        if self.discrete:
            return dist.log_prob(action.argmax(-1))
        return dist.log_prob(action).sum(-1)

    def entropy(self, dist: th.distributions.Distribution) -> th.Tensor:
        return dist.entropy() if self.discrete else dist.entropy().sum(-1)


class DreamerPolicy(BasePolicy):
    """
    World model + actor + critic + slow critic, with one Adam optimizer each for the model, the
    actor and the critic.

    ``predict(obs, state, episode_start, deterministic)`` filters the observation into the
    posterior latent state and acts on it; ``state = (deter, stoch, previous action)`` comes back
    for the next call, as the hidden state of sb3-contrib's ``RecurrentPPO`` does, and is reset
    where ``episode_start`` is True (``evaluate_policy`` threads both). With ``deterministic=True``
    the posterior's mode and the actor's mode are used, so equal inputs give equal actions.

    :param observation_space: observation space (flat Box or image Box)
    :param action_space: action space (Box or Discrete)
    :param lr_schedule: learning-rate schedule of the world model
    :param net_arch: hidden layer sizes of the actor and the critic
    :param world_model_kwargs: keyword arguments of
        :class:`~sb3_ext.common.world_model.LatentWorldModel`
    :param actor_learning_rate: learning rate of the actor
    :param critic_learning_rate: learning rate of the critic
    :param optimizer_kwargs: keyword arguments of the three Adam optimizers
    :param normalize_images: unused (the encoder scales images itself); kept for SB3
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        world_model_kwargs: dict[str, Any] | None = None,
        actor_learning_rate: float = 3e-5,
        critic_learning_rate: float = 3e-5,
        optimizer_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=th.optim.Adam,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
            squash_output=False,
        )
        self.net_arch = list(net_arch) if net_arch is not None else [256, 256]
        self.world_model_kwargs = dict(world_model_kwargs or {})
        self.actor_learning_rate = actor_learning_rate
        self.critic_learning_rate = critic_learning_rate
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.world_model = LatentWorldModel(
            self.observation_space, self.action_space, **self.world_model_kwargs
        )
        features = self.world_model.feature_size
        self.actor = Actor(features, self.action_space, self.net_arch)
        self.critic = build_mlp(features, self.net_arch, 1)
        self.critic_target = build_mlp(features, self.net_arch, 1)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        # Percentile return normalization (DreamerV3): running 5th and 95th percentiles.
        self.register_buffer("return_low", th.zeros(()))
        self.register_buffer("return_high", th.zeros(()))
        # foreach: one kernel per step for all the small tensors (Adam's CPU default loops over them).
        kwargs = {"foreach": True, **self.optimizer_kwargs}
        self.optimizer = self.optimizer_class(self.world_model.parameters(), lr=lr_schedule(1), **kwargs)
        self.actor_optimizer = self.optimizer_class(
            self.actor.parameters(), lr=self.actor_learning_rate, **kwargs
        )
        self.critic_optimizer = self.optimizer_class(
            self.critic.parameters(), lr=self.critic_learning_rate, **kwargs
        )

    def value(self, features: th.Tensor, target: bool = False) -> th.Tensor:
        """Critic (or slow critic) value of latent features."""
        return (self.critic_target if target else self.critic)(features).squeeze(-1)

    # ------------------------------------------------------------------ acting
    def initial_state(self, n_envs: int) -> DreamerState:
        state = self.world_model.initial_state(n_envs)
        return (
            state.deter.cpu().numpy(),
            state.stoch.cpu().numpy(),
            np.zeros((n_envs, self.world_model.action_dim), dtype=np.float32),
        )

    def act(
        self, obs: th.Tensor, state: DreamerState, episode_start: np.ndarray, deterministic: bool
    ) -> tuple[th.Tensor, DreamerState]:
        """Model action vectors for a batch of observations, and the next recurrent state."""
        wm = self.world_model
        n = len(obs)
        if self.world_model.latent == "gaussian":
            stats = (th.zeros(n, wm.rssm.stoch_size), th.ones(n, wm.rssm.stoch_size))
        else:
            stats = (th.zeros(n, wm.rssm.stoch_size, wm.rssm.classes),)
        previous = RSSMState(
            th.as_tensor(state[0], device=self.device),
            th.as_tensor(state[1], device=self.device),
            tuple(s.to(self.device) for s in stats),
        )
        prev_action = th.as_tensor(state[2], device=self.device)
        starts = th.as_tensor(episode_start, device=self.device, dtype=th.float32).reshape(-1)
        posterior, _ = wm.rssm.observe_step(
            previous, prev_action, wm.encoder(obs), starts, sample=not deterministic
        )
        action, _ = self.actor.act(wm.features(posterior), deterministic)
        next_state = (
            posterior.deter.cpu().numpy(),
            posterior.stoch.detach().cpu().numpy(),
            action.cpu().numpy(),
        )
        return action, next_state

    def action_from_vector(self, action: th.Tensor) -> np.ndarray:
        """Env actions from model action vectors: the Discrete index, or the Box action unscaled."""
        if isinstance(self.action_space, spaces.Discrete):
            return action.argmax(-1).cpu().numpy()
        return self.unscale_action(action.clamp(-1.0, 1.0).cpu().numpy())

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """Actions from a fresh recurrent state (``predict`` threads the state)."""
        n = len(observation)
        starts = np.ones(n, dtype=bool)
        action, _ = self.act(observation, self.initial_state(n), starts, deterministic)
        if isinstance(self.action_space, spaces.Discrete):
            return action.argmax(-1)
        return action

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, DreamerState]:
        """
        Action(s) and the next recurrent state for an observation (or one per environment).

        :param observation: the observation(s)
        :param state: ``(deter, stoch, previous action)`` from the previous call, or None to start
        :param episode_start: bool per environment, True where a new episode starts
        :param deterministic: the posterior's and the actor's modes instead of samples
        :return: the action(s) and the next state
        """
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        n_envs = len(obs_tensor)
        if state is None:
            state = self.initial_state(n_envs)
            episode_start = np.ones(n_envs, dtype=bool)
        elif len(state) != 3 or any(len(part) != n_envs for part in state):
            raise ValueError(
                f"state must be (deter, stoch, previous action) for {n_envs} environments, got {state!r}"
            )
        starts = (
            np.zeros(n_envs, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool)
        )
        with th.no_grad():
            action, next_state = self.act(obs_tensor, state, starts.reshape(-1), deterministic)
        actions = self.action_from_vector(action).reshape((-1, *self.action_space.shape))
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, next_state

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            world_model_kwargs=self.world_model_kwargs,
            actor_learning_rate=self.actor_learning_rate,
            critic_learning_rate=self.critic_learning_rate,
            lr_schedule=self._dummy_schedule,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data


MlpPolicy = DreamerPolicy
CnnPolicy = DreamerPolicy
