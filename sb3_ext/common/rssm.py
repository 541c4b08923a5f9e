"""Recurrent state-space model (RSSM) of PlaNet / Dreamer, with Gaussian or categorical latents.

The latent state at time t is a deterministic part ``deter`` (the hidden state of a GRU) and a
stochastic part ``stoch``. One step of the model (Hafner et al., *Learning Latent Dynamics for
Planning from Pixels*, ICML 2019, section 3):

* deterministic transition ``h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])``;
* prior (transition) ``p(z_t | h_t)``, used to imagine ahead;
* posterior (representation) ``q(z_t | h_t, e_t)`` given the observation's embedding ``e_t``.

Two latent families, chosen with ``latent="gaussian"`` or ``latent="categorical"``:

* Gaussian (PlaNet, DreamerV1): a diagonal Gaussian of ``stoch_size`` dimensions, standard
  deviation ``softplus(x) + min_std`` (``min_std=0.1``, PlaNet), reparameterized samples;
* categorical (DreamerV2, Hafner et al. ICLR 2021; DreamerV3, Hafner et al. 2023):
  ``stoch_size`` categorical variables of ``classes`` classes each; the probabilities are mixed
  with 1% uniform (``unimix=0.01``, DreamerV3 section "Robust predictions") and samples are one-hot
  with straight-through gradients ``sample + probs - stop_gradient(probs)`` (DreamerV2, eq. 5).

:func:`kl_loss` gives the KL term with balancing and free nats (see there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_ext.common.validation import check_choice, check_float, check_int

__all__ = [
    "RSSM",
    "LATENTS",
    "RSSMState",
    "kl_divergence",
    "kl_loss",
    "straight_through_sample",
    "unimix_probs",
]

#: Latent families of :class:`RSSM`.
LATENTS = ("gaussian", "categorical")


@dataclass
class RSSMState:
    """
    A batch of RSSM latent states.

    ``deter``: GRU state ``(B, deter_size)``; ``stoch``: sample ``(B, stoch_size)`` (Gaussian) or
    one-hot ``(B, stoch_size, classes)`` (categorical); ``stats``: the distribution's parameters,
    ``(mean, std)`` for Gaussian latents or ``(logits,)`` (log of the mixed probabilities) for
    categorical ones. Tensors may carry extra leading dims (``(B, T, ...)`` after stacking).
    """

    deter: th.Tensor
    stoch: th.Tensor
    stats: tuple[th.Tensor, ...]

    def map(self, fn) -> RSSMState:
        """The state with ``fn`` applied to every tensor (indexing, detaching, reshaping)."""
        return RSSMState(fn(self.deter), fn(self.stoch), tuple(fn(s) for s in self.stats))

    def detach(self) -> RSSMState:
        return self.map(lambda t: t.detach())

    @staticmethod
    def stack(states: list[RSSMState], dim: int = 1) -> RSSMState:
        """Stack states of shape ``(B, ...)`` along a new time axis ``dim``."""
        return RSSMState(
            th.stack([s.deter for s in states], dim),
            th.stack([s.stoch for s in states], dim),
            tuple(th.stack(parts, dim) for parts in zip(*(s.stats for s in states), strict=True)),
        )


def unimix_probs(logits: th.Tensor, unimix: float) -> th.Tensor:
    """``(1 - unimix) * softmax(logits) + unimix / classes`` over the last axis (DreamerV3)."""
    probs = F.softmax(logits, dim=-1)
    return (1.0 - unimix) * probs + unimix / logits.shape[-1]


def straight_through_sample(probs: th.Tensor, generator: th.Generator | None = None) -> th.Tensor:
    """A one-hot sample of ``Cat(probs)`` whose gradient is the gradient of ``probs`` (DreamerV2, eq. 5)."""
    # Inverse-CDF sampling: one uniform draw u in [0, 1) per variable (cheaper than multinomial for
    # small tensors) picks the class k with F(k - 1) <= u < F(k), F the cumulative probabilities, so
    # that a class of probability 0 is never drawn, not even for u = 0.
    uniform = th.rand(probs.shape[:-1] + (1,), generator=generator, device=probs.device, dtype=probs.dtype)
    below = (probs.detach().cumsum(-1) <= uniform).sum(-1)
    index = below.clamp(max=probs.shape[-1] - 1)
    one_hot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return one_hot + probs - probs.detach()


def kl_divergence(
    latent: str, post_stats: tuple[th.Tensor, ...], prior_stats: tuple[th.Tensor, ...]
) -> th.Tensor:
    """``KL(post || prior)`` summed over the latent dimensions (shape: the leading batch dims)."""
    if latent == "gaussian":
        (m_q, s_q), (m_p, s_p) = post_stats, prior_stats
        kl = th.log(s_p / s_q) + (s_q**2 + (m_q - m_p) ** 2) / (2.0 * s_p**2) - 0.5
        return kl.sum(-1)
    (logits_q,), (logits_p,) = post_stats, prior_stats
    probs_q = logits_q.exp()
    return (probs_q * (logits_q - logits_p)).sum((-2, -1))


def kl_loss(
    latent: str,
    post_stats: tuple[th.Tensor, ...],
    prior_stats: tuple[th.Tensor, ...],
    dynamics_scale: float = 0.5,
    representation_scale: float = 0.1,
    free_nats: float = 1.0,
) -> tuple[th.Tensor, th.Tensor]:
    """
    KL term with balancing and free nats, per step: returns ``(loss, kl)``, both shaped like the
    leading batch dims, where ``kl = KL(q || p)`` and

    ``loss = dynamics_scale * max(free_nats, KL(sg(q) || p))
    + representation_scale * max(free_nats, KL(q || sg(p)))``.

    Both KLs have the value ``kl``; they differ only in which side the gradient reaches: the
    dynamics term trains the prior towards the posterior, the representation term regularizes the
    posterior towards the prior. KL balancing is DreamerV2's (section 2.2: ``alpha = 0.8`` of a KL
    scale ``beta``, i.e. scales ``0.8 beta`` and ``0.2 beta``); the defaults ``0.5`` / ``0.1`` and
    the free nats of 1 nat applied to each term per step are DreamerV3's (section "World model
    learning"). PlaNet and DreamerV1 used one unbalanced KL with 3 free nats: pass
    ``dynamics_scale=0.5, representation_scale=0.5, free_nats=3.0`` for that loss. Below the free
    nats a term is constant and gives no gradient.
    """
    post_sg = tuple(s.detach() for s in post_stats)
    prior_sg = tuple(s.detach() for s in prior_stats)
    dynamics = kl_divergence(latent, post_sg, prior_stats)
    representation = kl_divergence(latent, post_stats, prior_sg)
    loss = dynamics_scale * th.clamp(dynamics, min=free_nats) + representation_scale * th.clamp(
        representation, min=free_nats
    )
    return loss, representation.detach()


class RSSM(nn.Module):
    """
    Recurrent state-space model: a GRU cell for ``deter`` and MLP heads for the prior and the
    posterior of ``stoch`` (see the module docstring).

    :param action_dim: size of the action vector fed to the transition (one-hot for ``Discrete``)
    :param embed_dim: size of the observation embedding fed to the posterior
    :param deter_size: size of the GRU state ``h``
    :param stoch_size: Gaussian: latent dimensions; categorical: number of categorical variables
    :param classes: classes per categorical variable (ignored for Gaussian latents)
    :param hidden_size: width of the MLP layers around the GRU
    :param latent: ``"gaussian"`` or ``"categorical"``
    :param min_std: lower bound of the Gaussian standard deviation
    :param unimix: uniform mixture weight of the categorical probabilities
    """

    def __init__(
        self,
        action_dim: int,
        embed_dim: int,
        deter_size: int = 200,
        stoch_size: int = 30,
        classes: int = 16,
        hidden_size: int = 200,
        latent: str = "gaussian",
        min_std: float = 0.1,
        unimix: float = 0.01,
    ) -> None:
        super().__init__()
        self.latent = check_choice("latent", latent, LATENTS)
        self.action_dim = check_int("action_dim", action_dim, 1)
        self.embed_dim = check_int("embed_dim", embed_dim, 1)
        self.deter_size = check_int("deter_size", deter_size, 1)
        self.stoch_size = check_int("stoch_size", stoch_size, 1)
        self.classes = check_int("classes", classes, 2) if latent == "categorical" else 1
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.min_std = check_float("min_std", min_std, 0.0)
        self.unimix = check_float("unimix", unimix, 0.0, 1.0)
        stoch_flat = self.stoch_size * self.classes
        stats_size = 2 * self.stoch_size if latent == "gaussian" else stoch_flat
        self.img_in = nn.Sequential(nn.Linear(stoch_flat + self.action_dim, hidden_size), nn.ELU())
        self.gru = nn.GRUCell(hidden_size, deter_size)
        self.prior_net = nn.Sequential(
            nn.Linear(deter_size, hidden_size), nn.ELU(), nn.Linear(hidden_size, stats_size)
        )
        self.post_net = nn.Sequential(
            nn.Linear(deter_size + self.embed_dim, hidden_size), nn.ELU(), nn.Linear(hidden_size, stats_size)
        )

    @property
    def stoch_flat_size(self) -> int:
        return self.stoch_size * self.classes

    @property
    def feature_size(self) -> int:
        """Size of :meth:`features`: ``deter_size + stoch_size * classes``."""
        return self.deter_size + self.stoch_flat_size

    def initial_state(self, batch_size: int, device: th.device | str = "cpu") -> RSSMState:
        """The all-zero state (zero mean, unit std / uniform probabilities), as in PlaNet and DreamerV1-2."""
        deter = th.zeros(batch_size, self.deter_size, device=device)
        if self.latent == "gaussian":
            zeros = th.zeros(batch_size, self.stoch_size, device=device)
            return RSSMState(deter, zeros, (zeros, th.ones_like(zeros)))
        stoch = th.zeros(batch_size, self.stoch_size, self.classes, device=device)
        return RSSMState(deter, stoch, (th.full_like(stoch, -float(th.log(th.tensor(float(self.classes))))),))

    def features(self, state: RSSMState) -> th.Tensor:
        """``[deter, flattened stoch]``, the input of every head and of the actor and critic."""
        stoch = state.stoch.reshape(*state.stoch.shape[: state.deter.dim() - 1], self.stoch_flat_size)
        return th.cat([state.deter, stoch], -1)

    def _distribution(self, raw: th.Tensor, generator: th.Generator | None, sample: bool = True):
        if self.latent == "gaussian":
            mean, raw_std = raw.chunk(2, -1)
            std = F.softplus(raw_std) + self.min_std
            if sample:
                noise = th.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
                stoch = mean + std * noise
            else:
                stoch = mean
            return stoch, (mean, std)
        logits = raw.reshape(*raw.shape[:-1], self.stoch_size, self.classes)
        probs = unimix_probs(logits, self.unimix)
        if sample:
            stoch = straight_through_sample(probs, generator)
        else:
            mode = F.one_hot(probs.argmax(-1), self.classes).to(probs.dtype)
            stoch = mode + probs - probs.detach()
        return stoch, (th.log(probs),)

    def imagine_step(
        self,
        state: RSSMState,
        action: th.Tensor,
        generator: th.Generator | None = None,
        sample: bool = True,
    ) -> RSSMState:
        """Prior state after ``action``: ``h' = GRU(h, [z, a])``, ``z' ~ p(z' | h')`` (mode if not ``sample``)."""
        stoch = state.stoch.reshape(len(state.stoch), self.stoch_flat_size)
        deter = self.gru(self.img_in(th.cat([stoch, action], -1)), state.deter)
        stoch, stats = self._distribution(self.prior_net(deter), generator, sample)
        return RSSMState(deter, stoch, stats)

    def observe_step(
        self,
        state: RSSMState,
        prev_action: th.Tensor,
        embed: th.Tensor,
        is_first: th.Tensor,
        generator: th.Generator | None = None,
        sample: bool = True,
    ) -> tuple[RSSMState, RSSMState]:
        """
        ``(posterior, prior)`` at the step that observes ``embed``. Where ``is_first`` is True the
        previous state and action are replaced by the initial state and a zero action first.
        """
        keep = (~is_first.bool()).to(embed.dtype)
        # The initial state is all zeros and the transition reads only ``deter`` and ``stoch``:
        # starting an episode is zeroing them and the previous action.
        state = RSSMState(_masked(keep, state.deter), _masked(keep, state.stoch), state.stats)
        prior = self.imagine_step(state, _masked(keep, prev_action), generator, sample)
        stoch, stats = self._distribution(self.post_net(th.cat([prior.deter, embed], -1)), generator, sample)
        return RSSMState(prior.deter, stoch, stats), prior


def _masked(keep: th.Tensor, value: th.Tensor) -> th.Tensor:
    """``value (B, ...)`` with the rows where ``keep (B,)`` is 0 set to zero."""
    return keep.reshape(-1, *([1] * (value.dim() - 1))) * value
