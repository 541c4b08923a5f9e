"""Latent world model: encoder, RSSM, decoder, reward and continuation heads, and its loss.

:class:`LatentWorldModel` is the model of PlaNet and Dreamer (Hafner et al. 2019, 2020, 2021,
2023) for one Gymnasium observation space and action space. Observations go in as the env gives
them (``uint8`` images, float vectors); actions as SB3's replay buffers hold them: ``Box``
actions scaled to ``[-1, 1]`` (``policy.scale_action``), ``Discrete`` actions as the index (one-hot
encoded inside). Its public API:

* :meth:`~LatentWorldModel.initial_state`, :meth:`~LatentWorldModel.observe_step`,
  :meth:`~LatentWorldModel.imagine_step`, :meth:`~LatentWorldModel.features` (one step of the RSSM);
* :meth:`~LatentWorldModel.observe` and :meth:`~LatentWorldModel.rollout` (whole sequences);
* heads :meth:`~LatentWorldModel.reward`, :meth:`~LatentWorldModel.continuation`,
  :meth:`~LatentWorldModel.decode` (in the env's units);
* :meth:`~LatentWorldModel.imagine` (open-loop prediction from context observations);
* :meth:`~LatentWorldModel.loss` on a :class:`~sb3_ext.common.sequence_buffer.SequenceBatch`.

The loss, averaged over the ``B x T`` steps of a batch (each term's weight is an argument):

``reconstruction_scale * ||dec(s_t) - target(o_t)||^2 + reward_scale * (r_hat(s_t) - target(r_t))^2
+ continuation_scale * BCE(c_hat(s_t), 1 - terminal_t) + KL term``

* reconstruction: summed squared error over the observation's entries, i.e. the negative
  log-likelihood of a unit-variance Gaussian up to constants (DreamerV1-3); the target is the
  ``[0, 1]`` image, the vector, or ``symlog`` of the vector with ``symlog=True`` (DreamerV3);
* reward: squared error, on ``symlog(r)`` with ``symlog=True`` (DreamerV3 regresses symlog
  rewards with a two-hot loss; this model regresses them directly);
* continuation: Bernoulli log-loss of ``1 - is_terminal`` (DreamerV2's discount predictor);
* KL: :func:`~sb3_ext.common.rssm.kl_loss` (balancing and free nats, DreamerV3 defaults
  ``0.5 / 0.1`` and 1 free nat per step).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from sb3_ext.common.encoders import (
    build_mlp,
    check_observation_space,
    make_decoder,
    make_encoder,
    symexp,
    symlog,
)
from sb3_ext.common.rssm import LATENTS, RSSM, RSSMState, kl_loss
from sb3_ext.common.sequence_buffer import SequenceBatch
from sb3_ext.common.validation import check_bool, check_choice, check_float, check_int

__all__ = ["LatentWorldModel", "RSSMState", "action_vector_size"]


def action_vector_size(action_space: spaces.Space) -> int:
    """Size of the model's action input: the Box dimension, or ``n`` (one-hot) for ``Discrete``."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return int(action_space.shape[0])
    raise ValueError(f"action_space must be a Discrete or a flat Box space, got {action_space}")


class LatentWorldModel(nn.Module):
    """
    RSSM world model with an encoder/decoder chosen from the observation space (see the module
    docstring).

    :param observation_space: a flat ``Box`` (MLP encoder/decoder) or a ``uint8`` image ``Box``
        whose sides halve cleanly down to 4 pixels (CNN encoder/decoder)
    :param action_space: ``Box`` (1-D) or ``Discrete``
    :param latent: ``"gaussian"`` (PlaNet, DreamerV1) or ``"categorical"`` (DreamerV2/V3)
    :param deter_size: GRU state size
    :param stoch_size: Gaussian latent dimensions, or number of categorical variables
    :param classes: classes per categorical variable
    :param hidden_size: width of the RSSM's MLP layers
    :param mlp_layers: hidden layer sizes of the vector encoder/decoder and of the heads
    :param embed_dim: embedding size of the vector encoder (the CNN's follows from the image)
    :param cnn_depth: channels of the first convolution (doubling at each layer)
    :param symlog: symlog the vector observations and rewards (inputs and targets), DreamerV3
    :param min_std: lower bound of the Gaussian latent's standard deviation (PlaNet: 0.1)
    :param unimix: uniform mixture of the categorical probabilities (DreamerV3: 0.01)
    :param kl_dynamics_scale: weight of ``max(free_nats, KL(sg(q) || p))`` (DreamerV3: 0.5)
    :param kl_representation_scale: weight of ``max(free_nats, KL(q || sg(p)))`` (DreamerV3: 0.1)
    :param free_nats: free nats per step of each KL term (DreamerV3: 1; PlaNet/DreamerV1: 3)
    :param reconstruction_scale: weight of the reconstruction loss
    :param reward_scale: weight of the reward loss
    :param continuation_scale: weight of the continuation loss
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        latent: str = "categorical",
        deter_size: int = 256,
        stoch_size: int = 32,
        classes: int = 16,
        hidden_size: int = 256,
        mlp_layers: tuple[int, ...] | list[int] = (256, 256),
        embed_dim: int = 256,
        cnn_depth: int = 16,
        symlog: bool = True,
        min_std: float = 0.1,
        unimix: float = 0.01,
        kl_dynamics_scale: float = 0.5,
        kl_representation_scale: float = 0.1,
        free_nats: float = 1.0,
        reconstruction_scale: float = 1.0,
        reward_scale: float = 1.0,
        continuation_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.is_image = check_observation_space(observation_space)
        self.observation_space, self.action_space = observation_space, action_space
        self.action_dim = action_vector_size(action_space)
        self.latent = check_choice("latent", latent, LATENTS)
        self.mlp_layers = tuple(check_int("mlp_layers", int(size), 1) for size in mlp_layers)
        self.symlog = check_bool("symlog", symlog)
        self.kl_dynamics_scale = check_float("kl_dynamics_scale", kl_dynamics_scale, 0.0)
        self.kl_representation_scale = check_float("kl_representation_scale", kl_representation_scale, 0.0)
        self.free_nats = check_float("free_nats", free_nats, 0.0)
        self.reconstruction_scale = check_float("reconstruction_scale", reconstruction_scale, 0.0)
        self.reward_scale = check_float("reward_scale", reward_scale, 0.0)
        self.continuation_scale = check_float("continuation_scale", continuation_scale, 0.0)
        self.encoder = make_encoder(observation_space, self.mlp_layers, embed_dim, cnn_depth, self.symlog)
        self.rssm = RSSM(
            self.action_dim,
            self.encoder.embed_dim,
            deter_size=deter_size,
            stoch_size=stoch_size,
            classes=classes,
            hidden_size=hidden_size,
            latent=latent,
            min_std=min_std,
            unimix=unimix,
        )
        self.feature_size = self.rssm.feature_size
        self.decoder = make_decoder(observation_space, self.feature_size, self.mlp_layers, cnn_depth)
        self.reward_head = build_mlp(self.feature_size, self.mlp_layers, 1)
        self.continuation_head = build_mlp(self.feature_size, self.mlp_layers, 1)

    @property
    def device(self) -> th.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ conversions
    def obs_tensor(self, obs: Any) -> th.Tensor:
        """Observations as a tensor on the model's device (dtype kept: ``uint8`` images stay ``uint8``)."""
        return th.as_tensor(np.asarray(obs) if not isinstance(obs, th.Tensor) else obs, device=self.device)

    def action_vector(self, actions: Any) -> th.Tensor:
        """
        The model's action input ``(..., action_dim)``: Box actions (scaled to [-1, 1]) as floats;
        Discrete indices, shaped ``(...)`` or ``(..., 1)``, one-hot encoded.
        """
        actions = th.as_tensor(
            np.asarray(actions) if not isinstance(actions, th.Tensor) else actions, device=self.device
        )
        if isinstance(self.action_space, spaces.Discrete):
            if actions.dim() > 0 and actions.shape[-1] == 1:
                actions = actions[..., 0]
            return F.one_hot(actions.long(), self.action_dim).float()
        return actions.float()

    def observation_target(self, obs: th.Tensor) -> th.Tensor:
        """What the decoder regresses: the ``[0, 1]`` image, or the (symlog of the) vector."""
        if self.is_image:
            return obs.float() / 255.0
        return symlog(obs.float()) if self.symlog else obs.float()

    def reward_target(self, rewards: th.Tensor) -> th.Tensor:
        return symlog(rewards) if self.symlog else rewards

    # ------------------------------------------------------------------ one step
    def initial_state(self, batch_size: int) -> RSSMState:
        """The initial (all-zero) latent state of ``batch_size`` sequences."""
        return self.rssm.initial_state(batch_size, self.device)

    def embed(self, obs: Any) -> th.Tensor:
        """Encoder embedding of observations with any leading dims."""
        return self.encoder(self.obs_tensor(obs))

    def observe_step(
        self,
        state: RSSMState,
        prev_action: Any,
        obs: Any,
        is_first: Any,
        generator: th.Generator | None = None,
        sample: bool = True,
    ) -> tuple[RSSMState, RSSMState]:
        """``(posterior, prior)`` after observing ``obs`` ``(B, *obs_shape)``; ``prev_action`` led to it."""
        is_first = th.as_tensor(
            np.asarray(is_first) if not isinstance(is_first, th.Tensor) else is_first, device=self.device
        )
        return self.rssm.observe_step(
            state, self.action_vector(prev_action), self.embed(obs), is_first.reshape(-1), generator, sample
        )

    def imagine_step(
        self, state: RSSMState, action: Any, generator: th.Generator | None = None, sample: bool = True
    ) -> RSSMState:
        """Prior state one step after ``action``."""
        return self.rssm.imagine_step(state, self.action_vector(action), generator, sample)

    def features(self, state: RSSMState) -> th.Tensor:
        """``[deter, flattened stoch]`` of a state, shape ``(..., feature_size)``."""
        return self.rssm.features(state)

    # ------------------------------------------------------------------ heads
    def reward(self, features: th.Tensor) -> th.Tensor:
        """Predicted mean reward in the env's units (``symexp`` of the head with ``symlog=True``)."""
        out = self.reward_head(features).squeeze(-1)
        return symexp(out) if self.symlog else out

    def continuation_logits(self, features: th.Tensor) -> th.Tensor:
        return self.continuation_head(features).squeeze(-1)

    def continuation(self, features: th.Tensor) -> th.Tensor:
        """Predicted probability that the episode goes on (1 - termination)."""
        return th.sigmoid(self.continuation_logits(features))

    def decode(self, features: th.Tensor) -> th.Tensor:
        """
        Predicted observation in the env's units: images as floats clipped to ``[0, 255]``
        (channel order of the observation space), vectors as floats (``symexp`` of the decoder
        with ``symlog=True``).
        """
        out = self.decoder(features)
        if self.is_image:
            return (out * 255.0).clamp(0.0, 255.0)
        return symexp(out) if self.symlog else out

    # ------------------------------------------------------------------ sequences
    def observe(
        self,
        observations: Any,
        actions: Any,
        is_first: Any,
        state: RSSMState | None = None,
        generator: th.Generator | None = None,
        sample: bool = True,
    ) -> tuple[RSSMState, RSSMState]:
        """
        Filter a batch of sequences: ``observations (B, T, *obs_shape)``, ``actions (B, T, ...)``
        where ``actions[:, t]`` led to ``observations[:, t]``, ``is_first (B, T)``. Returns the
        stacked ``(posteriors, priors)`` with leading dims ``(B, T)``.
        """
        is_first = th.as_tensor(
            np.asarray(is_first) if not isinstance(is_first, th.Tensor) else is_first, device=self.device
        )
        return self._filter(
            self.embed(observations), self.action_vector(actions), is_first, state, generator, sample
        )

    def _filter(
        self,
        embed: th.Tensor,
        actions: th.Tensor,
        is_first: th.Tensor,
        state: RSSMState | None,
        generator: th.Generator | None,
        sample: bool,
    ) -> tuple[RSSMState, RSSMState]:
        batch, length = embed.shape[:2]
        state = self.initial_state(batch) if state is None else state
        posteriors, priors = [], []
        for t in range(length):
            state, prior = self.rssm.observe_step(
                state, actions[:, t], embed[:, t], is_first[:, t], generator, sample
            )
            posteriors.append(state)
            priors.append(prior)
        return RSSMState.stack(posteriors), RSSMState.stack(priors)

    def rollout(
        self, state: RSSMState, actions: Any, generator: th.Generator | None = None, sample: bool = True
    ) -> RSSMState:
        """Prior states ``(B, H)`` after each of ``actions (B, H, ...)`` from ``state`` (open loop)."""
        return self._rollout(state, self.action_vector(actions), generator, sample)

    def _rollout(
        self, state: RSSMState, actions: th.Tensor, generator: th.Generator | None, sample: bool
    ) -> RSSMState:
        states = []
        for t in range(actions.shape[1]):
            state = self.rssm.imagine_step(state, actions[:, t], generator, sample)
            states.append(state)
        return RSSMState.stack(states)

    @th.no_grad()
    def imagine(
        self,
        context_obs: Any,
        actions: Any,
        context_actions: Any = None,
        sample: bool = False,
        generator: th.Generator | None = None,
    ) -> dict[str, th.Tensor]:
        """
        Open-loop prediction: filter ``context_obs (B, C, *obs_shape)`` (the first one starts an
        episode; ``context_actions (B, C - 1, ...)`` are the actions taken between them, only
        optional when ``C == 1``), then predict ``H`` steps ahead under ``actions (B, H, ...)``.

        :param sample: sample the latents (else the prior's mode: mean / most likely class)
        :return: ``obs (B, H, *obs_shape)`` (as :meth:`decode`), ``reward (B, H)``,
            ``continuation (B, H)`` and the latent ``features (B, H, feature_size)``
        """
        context_obs = self.obs_tensor(context_obs)
        obs_dims = len(self.observation_space.shape)
        if context_obs.dim() != obs_dims + 2:
            raise ValueError(
                f"context_obs must have shape (batch, context, *{self.observation_space.shape}), got {tuple(context_obs.shape)}"
            )
        batch, context = context_obs.shape[:2]
        actions = self.action_vector(actions)
        if actions.dim() != 3 or actions.shape[0] != batch:
            raise ValueError(
                f"actions must have shape (batch={batch}, horizon, ...), got {tuple(actions.shape)}"
            )
        if context_actions is None:
            if context != 1:
                raise ValueError(
                    f"context_actions (batch, {context - 1}, ...) are needed with {context} context observations"
                )
            previous = th.zeros(batch, 1, self.action_dim, device=self.device)
        else:
            context_actions = self.action_vector(context_actions)
            if context_actions.dim() != 3 or context_actions.shape[:2] != (batch, context - 1):
                raise ValueError(
                    f"context_actions must have shape (batch={batch}, {context - 1}, ...), got {tuple(context_actions.shape)}"
                )
            previous = th.cat([th.zeros(batch, 1, self.action_dim, device=self.device), context_actions], 1)
        is_first = th.zeros(batch, context, device=self.device)
        is_first[:, 0] = 1.0
        posteriors, _ = self._filter(self.embed(context_obs), previous, is_first, None, generator, sample)
        last = posteriors.map(lambda t: t[:, -1])
        priors = self._rollout(last, actions, generator, sample)
        features = self.features(priors)
        return dict(
            obs=self.decode(features),
            reward=self.reward(features),
            continuation=self.continuation(features),
            features=features,
        )

    # ------------------------------------------------------------------ learning
    def compute_loss(
        self, batch: SequenceBatch, generator: th.Generator | None = None
    ) -> tuple[th.Tensor, dict[str, th.Tensor], RSSMState]:
        """:meth:`loss` plus the posterior states ``(B, T)`` (Dreamer imagines from them)."""
        posteriors, priors = self.observe(
            batch.observations, batch.actions, batch.is_first, generator=generator
        )
        features = self.features(posteriors)
        prediction = self.decoder(features)
        target = self.observation_target(batch.observations)
        reconstruction = (prediction - target).pow(2).flatten(2).sum(-1)
        reward = (self.reward_head(features).squeeze(-1) - self.reward_target(batch.rewards)).pow(2)
        continuation = F.binary_cross_entropy_with_logits(
            self.continuation_logits(features), 1.0 - batch.is_terminal, reduction="none"
        )
        kl_term, kl = kl_loss(
            self.latent,
            posteriors.stats,
            priors.stats,
            self.kl_dynamics_scale,
            self.kl_representation_scale,
            self.free_nats,
        )
        total = (
            self.reconstruction_scale * reconstruction
            + self.reward_scale * reward
            + self.continuation_scale * continuation
            + kl_term
        ).mean()
        terms = dict(
            reconstruction_loss=reconstruction.mean(),
            reward_loss=reward.mean(),
            continuation_loss=continuation.mean(),
            kl_loss=kl_term.mean(),
            kl=kl.mean(),
        )
        return total, terms, posteriors

    def loss(
        self, batch: SequenceBatch, generator: th.Generator | None = None
    ) -> tuple[th.Tensor, dict[str, th.Tensor]]:
        """``(total loss, named terms)`` on a sequence batch (see the module docstring)."""
        total, terms, _ = self.compute_loss(batch, generator)
        return total, terms
