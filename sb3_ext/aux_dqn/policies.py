"""Policies for :class:`~sb3_ext.aux_dqn.AuxDQN`: a DQN Q-network whose encoder is shared with auxiliary heads.

The Q-network is exactly SB3's :class:`~stable_baselines3.dqn.policies.QNetwork` (same modules,
same state-dict keys). Its *encoder* is everything but the last linear layer: the features
extractor followed by the hidden layers of the Q MLP. The encoder's output, the latent ``z``,
feeds the Q head (that last linear layer) and three auxiliary heads:

- reward prediction ``r_hat = R(z_t, a_t)`` (UNREAL, Jaderberg et al. 2017),
- next-latent prediction ``z_hat_{t+1} = T(z_t, a_t)`` scored against a slowly-updated (Polyak)
  copy of the encoder with a cosine loss (SPR, Schwarzer et al. 2021; BYOL's target network),
- inverse dynamics ``p(a_t | z_t, z_{t+1})`` (Pathak et al. 2017).

Because the heads read the same latent as the Q head, their gradients shape the representation
the Q-values are computed from.
"""

from __future__ import annotations

import copy
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn
from torch.nn import functional as F


class AuxDQNPolicy(DQNPolicy):
    """
    DQN policy (Q-network and target Q-network) with auxiliary heads on the shared encoder.

    :param observation_space: Observation space
    :param action_space: Action space (``Discrete``)
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layers of the Q MLP on top of the features extractor. They belong to the
        shared encoder; only the final linear layer is specific to the Q-values. Defaults as SB3's DQN:
        ``[64, 64]``, and ``[]`` with :class:`~stable_baselines3.common.torch_layers.NatureCNN`.
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use; ``None`` (default) uses the class's
        ``default_features_extractor_class``: ``FlattenExtractor`` here, ``NatureCNN`` in :class:`CnnPolicy`
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default. It optimizes the
        Q-network and the auxiliary heads together.
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    :param aux_net_arch: Hidden layers of each auxiliary head (reward, transition and inverse-dynamics MLPs)
    """

    #: Features extractor used when ``features_extractor_class`` is ``None``.
    default_features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        aux_net_arch: list[int] | None = None,
    ) -> None:
        aux_net_arch = [128] if aux_net_arch is None else list(aux_net_arch)
        if any(not isinstance(units, int) or units < 1 for units in aux_net_arch):
            raise ValueError(f"aux_net_arch must be a list of positive ints, got {aux_net_arch!r}")
        if features_extractor_class is None:
            features_extractor_class = self.default_features_extractor_class
        # Read by _build(), which DQNPolicy.__init__ calls.
        self._aux_net_arch = aux_net_arch
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    @property
    def aux_net_arch(self) -> list[int]:
        """Hidden layers of each auxiliary head."""
        return self._aux_net_arch

    def _build(self, lr_schedule: Schedule) -> None:
        # The Q-networks are built first, exactly as in DQNPolicy, so that a seeded AuxDQN
        # initializes its Q-network to the same weights as a seeded DQN.
        self.q_net = self.make_q_net()
        self.q_net_target = self.make_q_net()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.set_training_mode(False)

        self.latent_dim = self.net_arch[-1] if len(self.net_arch) > 0 else self.q_net.features_dim
        n_actions = int(self.action_space.n)
        arch, act = self._aux_net_arch, self.activation_fn
        self.reward_head = nn.Sequential(*create_mlp(self.latent_dim + n_actions, 1, arch, act))
        self.transition_head = nn.Sequential(
            *create_mlp(self.latent_dim + n_actions, self.latent_dim, arch, act)
        )
        self.inverse_head = nn.Sequential(*create_mlp(2 * self.latent_dim, n_actions, arch, act))

        # Target encoder for next-latent prediction: a Polyak-averaged copy of the online encoder
        # (features extractor + hidden Q layers); it never receives gradients.
        self.target_features_extractor = copy.deepcopy(self.q_net.features_extractor)
        self.target_torso = copy.deepcopy(self.torso)
        for param in self.target_encoder_parameters():
            param.requires_grad_(False)
        self.target_features_extractor.train(False)
        self.target_torso.train(False)

        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            [*self.q_net.parameters(), *self.aux_head_parameters()],
            lr=lr_schedule(1),
            **self.optimizer_kwargs,
        )

    # ------------------------------------------------------------------ encoder / heads
    @property
    def torso(self) -> nn.Sequential:
        """Hidden layers of the Q MLP (shares its modules with ``q_net.q_net``)."""
        return self.q_net.q_net[:-1]

    @property
    def q_head(self) -> nn.Module:
        """The final linear layer of the Q MLP: latent -> Q-values."""
        return self.q_net.q_net[-1]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the shared encoder (features extractor and hidden Q layers)."""
        return [*self.q_net.features_extractor.parameters(), *self.torso.parameters()]

    def target_encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the slowly-updated target encoder, in the order of :meth:`encoder_parameters`."""
        return [*self.target_features_extractor.parameters(), *self.target_torso.parameters()]

    def aux_head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the three auxiliary heads."""
        return [
            *self.reward_head.parameters(),
            *self.transition_head.parameters(),
            *self.inverse_head.parameters(),
        ]

    def latent(self, obs: PyTorchObs) -> th.Tensor:
        """Online latent ``z = torso(features_extractor(preprocess(obs)))``, shape ``(batch, latent_dim)``."""
        return self.torso(self.q_net.extract_features(obs, self.q_net.features_extractor))

    @th.no_grad()
    def target_latent(self, obs: PyTorchObs) -> th.Tensor:
        """Latent of the target encoder (no gradient)."""
        return self.target_torso(self.q_net.extract_features(obs, self.target_features_extractor))

    def _action_one_hot(self, actions: th.Tensor) -> th.Tensor:
        return F.one_hot(actions.long().reshape(-1), int(self.action_space.n)).float()

    # ------------------------------------------------------------------ auxiliary losses
    def reward_loss(self, latent: th.Tensor, actions: th.Tensor, rewards: th.Tensor) -> th.Tensor:
        """
        Reward prediction: Huber loss between ``R(z_t, a_t)`` and the observed reward.

        :param latent: online latent of the observations, ``(batch, latent_dim)``
        :param actions: actions taken, ``(batch, 1)``
        :param rewards: rewards received, ``(batch, 1)``
        :return: per-sample losses, ``(batch,)``
        """
        prediction = self.reward_head(th.cat([latent, self._action_one_hot(actions)], dim=1))
        return F.smooth_l1_loss(prediction, rewards.reshape(-1, 1), reduction="none").reshape(-1)

    def latent_prediction_loss(
        self, latent: th.Tensor, actions: th.Tensor, next_obs: PyTorchObs
    ) -> th.Tensor:
        """
        SPR-style next-latent prediction: ``2 - 2 cos(T(z_t, a_t), z'_{t+1})`` where ``z'_{t+1}`` is the
        target encoder's latent of the next observation (no gradient flows into the target).

        :param latent: online latent of the observations, ``(batch, latent_dim)``
        :param actions: actions taken, ``(batch, 1)``
        :param next_obs: next observations (already augmented, if augmentation is used)
        :return: per-sample losses, ``(batch,)``
        """
        prediction = self.transition_head(th.cat([latent, self._action_one_hot(actions)], dim=1))
        target = self.target_latent(next_obs)
        return 2.0 - 2.0 * F.cosine_similarity(prediction, target, dim=1, eps=1e-6)

    def inverse_dynamics_loss(
        self, latent: th.Tensor, next_latent: th.Tensor, actions: th.Tensor
    ) -> th.Tensor:
        """
        Inverse dynamics: cross-entropy of the action predicted from ``(z_t, z_{t+1})``.

        :param latent: online latent of the observations, ``(batch, latent_dim)``
        :param next_latent: online latent of the next observations (gradients flow through both)
        :param actions: actions taken, ``(batch, 1)``
        :return: per-sample losses, ``(batch,)``
        """
        logits = self.inverse_head(th.cat([latent, next_latent], dim=1))
        return F.cross_entropy(logits, actions.long().reshape(-1), reduction="none")

    @th.no_grad()
    def update_target_encoder(self, tau: float) -> None:
        """Polyak update of the target encoder: ``target <- tau * online + (1 - tau) * target``."""
        polyak_update(self.encoder_parameters(), self.target_encoder_parameters(), tau)
        # Running statistics (batch norm) are copied, as SB3's DQN does for its target network.
        online_buffers = [*self.q_net.features_extractor.buffers(), *self.torso.buffers()]
        target_buffers = [*self.target_features_extractor.buffers(), *self.target_torso.buffers()]
        polyak_update(online_buffers, target_buffers, 1.0)

    # ------------------------------------------------------------------ SB3 plumbing
    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(aux_net_arch=self._aux_net_arch)
        return data

    def set_training_mode(self, mode: bool) -> None:
        """
        Put the policy in either training or evaluation mode (affects batch norm / dropout).
        The target encoder always stays in evaluation mode.

        :param mode: if true, set to training mode, else set to evaluation mode
        """
        super().set_training_mode(mode)
        for head in (self.reward_head, self.transition_head, self.inverse_head):
            head.train(mode)


MlpPolicy = AuxDQNPolicy


class CnnPolicy(AuxDQNPolicy):
    """
    :class:`AuxDQNPolicy` for image observations: the shared encoder is
    :class:`~stable_baselines3.common.torch_layers.NatureCNN` by default.

    Parameters as :class:`AuxDQNPolicy`; ``features_extractor_class`` defaults to ``NatureCNN``.
    """

    default_features_extractor_class = NatureCNN
