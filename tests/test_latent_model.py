"""Exact behaviour of the latent world model's parts (RSSM, encoders, sequence replay, losses,
prediction strip, train-ratio schedule), each checked against an independent computation."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from torch.nn import functional as F

from sb3_ext.common import prediction_strip
from sb3_ext.common.encoders import (
    CnnDecoder,
    CnnEncoder,
    MlpDecoder,
    MlpEncoder,
    build_mlp,
    check_observation_space,
    image_layers,
    make_decoder,
    make_encoder,
    symexp,
    symlog,
)
from sb3_ext.common.rssm import RSSM, RSSMState, kl_divergence, kl_loss, straight_through_sample, unimix_probs
from sb3_ext.common.sequence_buffer import SequenceBatch, SequenceReplayBuffer, check_sequence_length
from sb3_ext.common.sequence_learning import TrainRatioMixin
from sb3_ext.common.world_model import LatentWorldModel, action_vector_size

VECTOR = spaces.Box(-10, 10, (3,), np.float32)
BOX_ACTION = spaces.Box(-1, 1, (2,), np.float32)
SMALL = dict(deter_size=5, stoch_size=3, classes=4, hidden_size=6, mlp_layers=(7,), embed_dim=4, cnn_depth=2)


def softplus(x: th.Tensor) -> th.Tensor:
    return th.log(1.0 + th.exp(x))


def softmax(x: th.Tensor) -> th.Tensor:
    e = th.exp(x - x.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def sigmoid(x: th.Tensor) -> th.Tensor:
    return 1.0 / (1.0 + th.exp(-x))


def silu(x: th.Tensor) -> th.Tensor:
    return x * sigmoid(x)


def elu(x: th.Tensor) -> th.Tensor:
    return th.where(x > 0, x, th.exp(x) - 1.0)


def linear(layer: th.nn.Linear, x: th.Tensor) -> th.Tensor:
    return x @ layer.weight.T + layer.bias


def gru_cell(cell: th.nn.GRUCell, x: th.Tensor, h: th.Tensor) -> th.Tensor:
    """PyTorch's GRUCell equations (reset, update, new gates), written out."""
    w_ir, w_iz, w_in = cell.weight_ih.chunk(3)
    w_hr, w_hz, w_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    n = th.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
    return (1 - z) * n + z * h


def two_layer(net: th.nn.Sequential, x: th.Tensor) -> th.Tensor:
    """Linear -> ELU -> Linear (the RSSM's prior and posterior heads)."""
    return linear(net[2], elu(linear(net[0], x)))


# =========================================================================== RSSM
def test_rssm_defaults_are_planets_sizes() -> None:
    rssm = RSSM(action_dim=2, embed_dim=3)
    assert (rssm.latent, rssm.deter_size, rssm.stoch_size, rssm.hidden_size) == ("gaussian", 200, 30, 200)
    assert (rssm.min_std, rssm.unimix, rssm.classes, rssm.feature_size) == (0.1, 0.01, 1, 230)
    state = rssm.imagine_step(rssm.initial_state(4), th.zeros(4, 2))
    assert state.deter.shape == (4, 200) and state.stoch.shape == (4, 30)
    assert [s.shape for s in state.stats] == [(4, 30), (4, 30)]
    categorical = RSSM(action_dim=2, embed_dim=3, latent="categorical")
    assert categorical.classes == 16 and categorical.feature_size == 200 + 30 * 16
    post, prior = categorical.observe_step(
        categorical.initial_state(4), th.zeros(4, 2), th.zeros(4, 3), th.ones(4)
    )
    assert post.stoch.shape == prior.stoch.shape == post.stats[0].shape == (4, 30, 16)


@pytest.mark.parametrize(
    "name, bad, good",
    [
        ("action_dim", 0, 1),
        ("embed_dim", 0, 1),
        ("deter_size", 0, 1),
        ("stoch_size", 0, 1),
        ("hidden_size", 0, 1),
        ("classes", 1, 2),
        ("min_std", -0.01, 0.0),
        ("unimix", -0.01, 0.0),
        ("unimix", 1.01, 1.0),
    ],
)
def test_rssm_argument_bounds(name: str, bad: Any, good: Any) -> None:
    arguments = dict(
        action_dim=1, embed_dim=1, deter_size=1, stoch_size=1, hidden_size=1, latent="categorical"
    )
    with pytest.raises(ValueError, match=f"^{name} must"):
        RSSM(**{**arguments, name: bad})
    rssm = RSSM(**{**arguments, name: good})
    assert getattr(rssm, name) == good
    post, _ = rssm.observe_step(
        rssm.initial_state(2), th.zeros(2, rssm.action_dim), th.zeros(2, rssm.embed_dim), th.ones(2)
    )
    assert post.stoch.shape == (2, rssm.stoch_size, rssm.classes)


def test_rssm_latent_choice_and_classes_ignored_for_gaussians() -> None:
    with pytest.raises(ValueError, match=r"^latent must be one of \('gaussian', 'categorical'\)"):
        RSSM(1, 1, latent="vq")
    # classes only counts for categorical latents: a Gaussian RSSM accepts (and ignores) classes=1.
    rssm = RSSM(1, 1, deter_size=2, stoch_size=3, hidden_size=2, classes=1)
    assert rssm.classes == 1 and rssm.feature_size == 5


@pytest.mark.parametrize("latent", ["gaussian", "categorical"])
def test_initial_state_is_zero_with_unit_std_or_uniform_probabilities(latent: str) -> None:
    rssm = RSSM(2, 3, deter_size=4, stoch_size=3, classes=5, hidden_size=4, latent=latent)
    state = rssm.initial_state(2)
    assert state.deter.device.type == "cpu"
    th.testing.assert_close(state.deter, th.zeros(2, 4))
    if latent == "gaussian":
        th.testing.assert_close(state.stoch, th.zeros(2, 3))
        mean, std = state.stats
        th.testing.assert_close(mean, th.zeros(2, 3))
        th.testing.assert_close(std, th.ones(2, 3))
    else:
        th.testing.assert_close(state.stoch, th.zeros(2, 3, 5))
        (logits,) = state.stats
        th.testing.assert_close(logits, th.full((2, 3, 5), math.log(1 / 5)))


def test_rssm_state_stack_map_and_detach() -> None:
    states = [
        RSSMState(
            th.full((2, 3), float(t)), th.full((2, 4), 10.0 + t), (th.full((2, 4), -float(t)), th.ones(2, 4))
        )
        for t in range(5)
    ]
    stacked = RSSMState.stack(states)  # a new time axis at dim 1 by default
    assert stacked.deter.shape == (2, 5, 3) and stacked.stoch.shape == (2, 5, 4)
    assert [s.shape for s in stacked.stats] == [(2, 5, 4), (2, 5, 4)]
    th.testing.assert_close(stacked.deter[1, :, 0], th.arange(5.0))
    th.testing.assert_close(stacked.stoch[0, :, 2], 10.0 + th.arange(5.0))
    th.testing.assert_close(stacked.stats[0][0, :, 1], -th.arange(5.0))
    assert RSSMState.stack(states, 0).deter.shape == (5, 2, 3)
    last = stacked.map(lambda t: t[:, -1])
    th.testing.assert_close(last.deter, states[-1].deter)
    th.testing.assert_close(last.stats[0], states[-1].stats[0])
    th.testing.assert_close(last.stats[1], states[-1].stats[1])
    grad = RSSMState(
        th.ones(1, requires_grad=True) * 2,
        th.ones(1, requires_grad=True) * 3,
        (th.ones(1, requires_grad=True) * 4,),
    )
    detached = grad.detach()
    assert not detached.deter.requires_grad and not detached.stoch.requires_grad
    assert not detached.stats[0].requires_grad
    assert (detached.deter.item(), detached.stoch.item(), detached.stats[0].item()) == (2.0, 3.0, 4.0)


def test_features_concatenate_deter_and_the_flattened_stoch_with_any_leading_dims() -> None:
    rssm = RSSM(1, 1, deter_size=2, stoch_size=3, classes=4, hidden_size=2, latent="categorical")
    deter = th.arange(2 * 5 * 2.0).reshape(2, 5, 2)
    stoch = th.arange(2 * 5 * 12.0).reshape(2, 5, 3, 4) + 100
    features = rssm.features(RSSMState(deter, stoch, (stoch,)))
    assert features.shape == (2, 5, 14)
    th.testing.assert_close(features[1, 3], th.cat([deter[1, 3], stoch[1, 3].flatten()]))
    one_step = rssm.features(RSSMState(deter[:, 0], stoch[:, 0], (stoch[:, 0],)))
    th.testing.assert_close(one_step, features[:, 0])


def gaussian_rssm(min_std: float = 0.3) -> RSSM:
    th.manual_seed(3)
    return RSSM(2, 3, deter_size=4, stoch_size=3, hidden_size=5, latent="gaussian", min_std=min_std)


def categorical_rssm(unimix: float = 0.2) -> RSSM:
    th.manual_seed(4)
    return RSSM(
        2, 3, deter_size=4, stoch_size=3, classes=4, hidden_size=5, latent="categorical", unimix=unimix
    )


def random_state(rssm: RSSM, batch: int, seed: int = 0) -> RSSMState:
    g = th.Generator().manual_seed(seed)
    deter = th.randn(batch, rssm.deter_size, generator=g)
    if rssm.latent == "gaussian":
        stoch = th.randn(batch, rssm.stoch_size, generator=g)
        return RSSMState(deter, stoch, (stoch, th.ones_like(stoch)))
    index = th.randint(0, rssm.classes, (batch, rssm.stoch_size), generator=g)
    stoch = F.one_hot(index, rssm.classes).float()
    return RSSMState(deter, stoch, (th.log(th.full_like(stoch, 1 / rssm.classes)),))


def gaussian_head(rssm: RSSM, raw: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    mean, raw_std = raw[:, : rssm.stoch_size], raw[:, rssm.stoch_size :]
    return mean, softplus(raw_std) + rssm.min_std


def transition(rssm: RSSM, state: RSSMState, action: th.Tensor) -> th.Tensor:
    """``h' = GRU(h, ELU(W [z, a] + b))``."""
    stoch = state.stoch.reshape(len(state.stoch), -1)
    return gru_cell(rssm.gru, elu(linear(rssm.img_in[0], th.cat([stoch, action], -1))), state.deter)


@th.no_grad()
def test_gaussian_prior_step_is_the_planet_transition() -> None:
    rssm = gaussian_rssm()
    state = random_state(rssm, 6)
    action = th.randn(6, 2, generator=th.Generator().manual_seed(1))
    deter = transition(rssm, state, action)
    mean, std = gaussian_head(rssm, two_layer(rssm.prior_net, deter))
    # The mode is the mean; a sample is mean + std * eps with eps drawn from the generator.
    mode = rssm.imagine_step(state, action, sample=False)
    th.testing.assert_close(mode.deter, deter)
    th.testing.assert_close(mode.stoch, mean)
    th.testing.assert_close(mode.stats[0], mean)
    th.testing.assert_close(mode.stats[1], std)
    assert (std > rssm.min_std).all()
    sample = rssm.imagine_step(state, action, generator=th.Generator().manual_seed(9))
    noise = th.randn(6, 3, generator=th.Generator().manual_seed(9))
    th.testing.assert_close(sample.stoch, mean + std * noise)


@th.no_grad()
def test_gaussian_std_never_falls_below_min_std() -> None:
    rssm = gaussian_rssm(min_std=0.25)
    raw = th.cat([th.zeros(1, 3), th.tensor([[-200.0, 0.0, 3.0]])], -1)
    _, (mean, std) = rssm._distribution(raw, None, sample=False)
    th.testing.assert_close(std, th.tensor([[0.25, math.log(2.0) + 0.25, math.log1p(math.exp(3.0)) + 0.25]]))
    th.testing.assert_close(mean, th.zeros(1, 3))


def categorical_probs(rssm: RSSM, raw: th.Tensor) -> th.Tensor:
    logits = raw.reshape(len(raw), rssm.stoch_size, rssm.classes)
    return (1 - rssm.unimix) * softmax(logits) + rssm.unimix / rssm.classes


def test_categorical_prior_step_mixes_probabilities_and_takes_the_mode() -> None:
    rssm = categorical_rssm(unimix=0.2)
    state = random_state(rssm, 5)
    action = th.randn(5, 2, generator=th.Generator().manual_seed(1))
    with th.no_grad():
        deter = transition(rssm, state, action)
        probs = categorical_probs(rssm, two_layer(rssm.prior_net, deter))
    mode = rssm.imagine_step(state, action, sample=False)
    th.testing.assert_close(mode.deter, deter)
    th.testing.assert_close(mode.stats[0], th.log(probs))
    th.testing.assert_close(mode.stoch, F.one_hot(probs.argmax(-1), 4).float())
    # The mode passes the gradient of the probabilities (straight through).
    weights = th.randn(5, 3, 4, generator=th.Generator().manual_seed(2))
    (grad_mode,) = th.autograd.grad((mode.stoch * weights).sum(), rssm.prior_net[2].bias)
    again = rssm.imagine_step(state, action, sample=False)
    (grad_probs,) = th.autograd.grad((again.stats[0].exp() * weights).sum(), rssm.prior_net[2].bias)
    th.testing.assert_close(grad_mode, grad_probs)
    assert grad_mode.abs().sum() > 0
    sample = rssm.imagine_step(state, action, generator=th.Generator().manual_seed(7))
    expected = straight_through_sample(probs, th.Generator().manual_seed(7))
    th.testing.assert_close(sample.stoch.detach(), expected)


@pytest.mark.parametrize("latent", ["gaussian", "categorical"])
def test_posterior_step_reads_the_embedding_and_is_first_resets_each_row(latent: str) -> None:
    rssm = gaussian_rssm() if latent == "gaussian" else categorical_rssm()
    state = random_state(rssm, 3)
    g = th.Generator().manual_seed(5)
    action, embed = th.randn(3, 2, generator=g), th.randn(3, 3, generator=g)
    is_first = th.tensor([False, True, False])
    post, prior = rssm.observe_step(state, action, embed, is_first, sample=False)
    with th.no_grad():
        keep = th.tensor([[1.0], [0.0], [1.0]])
        reset = RSSMState(
            state.deter * keep,
            state.stoch * keep.reshape(3, *[1] * (state.stoch.dim() - 1)),
            state.stats,
        )
        deter = transition(rssm, reset, action * keep)
        raw = two_layer(rssm.post_net, th.cat([deter, embed], -1))
        th.testing.assert_close(prior.deter, deter)
        th.testing.assert_close(post.deter, deter)
        prior_mode = rssm.imagine_step(reset, action * keep, sample=False)
        th.testing.assert_close(prior.stats[0], prior_mode.stats[0])
        th.testing.assert_close(prior.stoch, prior_mode.stoch)  # sample=False: the prior's mode too
        if latent == "gaussian":
            mean, std = gaussian_head(rssm, raw)
            th.testing.assert_close(post.stoch, mean)
            th.testing.assert_close(post.stats[1], std)
        else:
            probs = categorical_probs(rssm, raw)
            th.testing.assert_close(post.stats[0], th.log(probs))
            th.testing.assert_close(post.stoch, F.one_hot(probs.argmax(-1), 4).float())
    # A float 0/1 is_first works as the boolean one.
    again, _ = rssm.observe_step(state, action, embed, is_first.float(), sample=False)
    th.testing.assert_close(again.stats[0], post.stats[0])
    sampled, _ = rssm.observe_step(state, action, embed, is_first, generator=th.Generator().manual_seed(1))
    assert not th.equal(sampled.stoch, post.stoch)


def test_unimix_over_the_last_axis_of_a_batch_of_variables() -> None:
    logits = th.tensor([[[0.0, math.log(3.0)], [math.log(4.0), 0.0]], [[1.0, 1.0], [0.0, -math.inf]]])
    probs = unimix_probs(logits, 0.1)
    expected = [[[0.25, 0.75], [0.8, 0.2]], [[0.5, 0.5], [1.0, 0.0]]]
    np.testing.assert_allclose(probs.numpy(), 0.9 * np.array(expected) + 0.05, rtol=1e-6)


def test_straight_through_sample_is_the_inverse_cdf_of_one_uniform_per_variable() -> None:
    probs = th.tensor([[[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]]).expand(4000, 2, 3)
    sample = straight_through_sample(probs, th.Generator().manual_seed(3))
    assert sample.shape == (4000, 2, 3) and sample.dtype == th.float32
    uniform = th.rand(4000, 2, 1, generator=th.Generator().manual_seed(3))
    cdf = th.tensor([[0.2, 0.5, 1.0], [0.6, 0.9, 1.0]])
    index = (uniform > cdf).sum(-1)
    th.testing.assert_close(sample, F.one_hot(index, 3).float())
    np.testing.assert_allclose(sample.mean(0).numpy(), probs[0].numpy(), atol=0.03)
    # Probabilities that sum to less than 1 (rounding): the mass left over goes to the last class.
    short = straight_through_sample(th.full((1000, 1, 2), 0.25), th.Generator().manual_seed(0))
    assert short[:, 0, 1].mean().item() == pytest.approx(0.75, abs=0.05)
    double = straight_through_sample(th.full((5, 2), 0.5, dtype=th.float64), th.Generator().manual_seed(0))
    uniform = th.rand(5, 1, generator=th.Generator().manual_seed(0), dtype=th.float64)
    assert double.dtype == th.float64
    th.testing.assert_close(double, F.one_hot((uniform >= 0.5).long()[:, 0], 2).double())


def test_a_class_of_probability_zero_is_never_drawn_even_for_a_uniform_draw_of_zero() -> None:
    # The 298,485th uniform number of this generator is exactly 0.0 (float32 draws are multiples of
    # 2**-24): the inverse CDF must give the first class whose cumulative probability exceeds it.
    draws = th.rand(298_485, 1, generator=th.Generator().manual_seed(34))
    assert draws[-1].item() == 0.0
    probs = th.tensor([0.0, 1.0]).expand(298_485, 2)
    sample = straight_through_sample(probs, th.Generator().manual_seed(34))
    assert (sample[:, 1] == 1.0).all()


def test_categorical_kl_sums_variables_and_classes_per_batch_entry() -> None:
    g = th.Generator().manual_seed(0)
    q = softmax(th.randn(2, 3, 4, generator=g))
    p = softmax(th.randn(2, 3, 4, generator=g))
    kl = kl_divergence("categorical", (th.log(q),), (th.log(p),))
    expected = [
        sum(float(q[b, v, c] * math.log(q[b, v, c] / p[b, v, c])) for v in range(3) for c in range(4))
        for b in range(2)
    ]
    np.testing.assert_allclose(kl.numpy(), expected, rtol=1e-5)


def test_kl_loss_defaults_are_dreamerv3s_and_its_kl_is_detached() -> None:
    # Two steps: KL 0.818 per dim, three dims (2.45 > 1 free nat) and zero (clipped to 1).
    kl_one = math.log(2.0) + 1.25 / 2.0 - 0.5
    m_q = th.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], requires_grad=True)
    s_q = th.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    loss, kl = kl_loss("gaussian", (m_q, s_q), (th.zeros(2, 3), th.ones(2, 3)))
    np.testing.assert_allclose(kl.numpy(), [3 * kl_one, 0.0], atol=1e-6)
    np.testing.assert_allclose(loss.detach().numpy(), [0.6 * 3 * kl_one, 0.6], rtol=1e-6)
    assert not kl.requires_grad and loss.requires_grad


# =========================================================================== encoders and decoders
def test_symlog_and_symexp_values() -> None:
    x = th.tensor([-(math.e - 1.0), -0.5, 0.0, 3.0, 1e6])
    expected = [-1.0, -math.log(1.5), 0.0, math.log(4.0), math.log(1e6 + 1)]
    np.testing.assert_allclose(symlog(x).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(
        symexp(th.tensor([-1.0, 0.0, math.log(4.0)])).numpy(), [-(math.e - 1), 0.0, 3.0], rtol=1e-6
    )


def test_build_mlp_is_linear_layernorm_silu_blocks_then_a_linear_output() -> None:
    th.manual_seed(0)
    net = build_mlp(3, (4, 5), 2)
    x = th.randn(6, 3)

    def layer_norm(y: th.Tensor, norm: th.nn.LayerNorm) -> th.Tensor:
        centred = y - y.mean(-1, keepdim=True)
        return centred / th.sqrt(centred.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight + norm.bias

    with th.no_grad():
        for norm in (net[1], net[4]):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        y = silu(layer_norm(linear(net[0], x), net[1]))
        y = silu(layer_norm(linear(net[3], y), net[4]))
        th.testing.assert_close(net(x), linear(net[6], y))
    assert len(net) == 7 and net[0].in_features == 3 and net[6].out_features == 2
    assert len(build_mlp(3, (), 2)) == 1


def test_observation_spaces_accepted_and_refused() -> None:
    assert check_observation_space(spaces.Box(0, 255, (8, 8, 3), np.uint8)) is True
    assert check_observation_space(spaces.Box(-1, 1, (2, 5), np.float64)) is False
    assert check_observation_space(spaces.Box(-3, 3, (4,), np.int64)) is False
    with pytest.raises(ValueError, match="^observation_space must be a gymnasium.spaces.Box"):
        check_observation_space(spaces.Discrete(3))
    with pytest.raises(ValueError, match="^observation_space must hold numbers, got dtype bool"):
        check_observation_space(spaces.Box(0, 1, (3,), np.bool_))
    with pytest.raises(ValueError, match="^observation_space: image sides must halve cleanly"):
        check_observation_space(spaces.Box(0, 255, (12, 12, 3), np.uint8))


@pytest.mark.parametrize(
    "shape, layers",
    [
        ((8, 8, 3), 1),
        ((16, 32, 3), 2),
        ((3, 32, 16), 2),
        ((64, 64, 1), 4),
        ((1, 128, 64), 4),
        ((32, 8, 3), 1),
    ],
)
def test_image_layers_halve_the_smaller_side_to_four_pixels(shape: tuple[int, ...], layers: int) -> None:
    assert image_layers(spaces.Box(0, 255, shape, np.uint8)) == layers


@pytest.mark.parametrize(
    "shape, size",
    [
        ((4, 4, 3), "4x4"),
        ((2, 2, 1), "2x2"),
        ((12, 16, 3), "12x16"),
        ((16, 18, 3), "16x18"),
        ((3, 24, 12), "24x12"),
    ],
)
def test_image_sides_that_do_not_halve_to_four_are_refused(shape: tuple[int, ...], size: str) -> None:
    message = (
        r"^observation_space: image sides must halve cleanly down to 4 pixels \(the smaller side "
        r"8, 16, 32, 64, 128, \.\.\. pixels and the other side divisible by the same power of 2\), "
        f"got an image of {size}$"
    )
    with pytest.raises(ValueError, match=message):
        image_layers(spaces.Box(0, 255, shape, np.uint8))


@pytest.mark.filterwarnings("ignore:Treating image space as channels-last")
def test_an_empty_image_is_refused_with_the_same_message() -> None:
    with pytest.raises(ValueError, match="^observation_space: image sides .* got an image of 8x0$"):
        image_layers(spaces.Box(0, 255, (8, 0, 3), np.uint8))


@th.no_grad()
def test_mlp_encoder_flattens_the_observation_and_symlogs_it() -> None:
    th.manual_seed(0)
    space = spaces.Box(-10, 10, (2, 3), np.float32)
    obs = 5 * th.randn(4, 7, 2, 3)
    for flag in (True, False):
        encoder = make_encoder(space, (6,), 5, cnn_depth=0, symlog_inputs=flag)
        assert isinstance(encoder, MlpEncoder) and encoder.embed_dim == 5
        flat = obs.reshape(4, 7, 6)
        th.testing.assert_close(encoder(obs), encoder.net(symlog(flat) if flag else flat))
        assert encoder(obs[0, 0]).shape == (5,)
    with pytest.raises(ValueError, match="^embed_dim must"):
        make_encoder(space, (6,), 0, cnn_depth=0, symlog_inputs=False)
    decoder = make_decoder(space, 9, (6,), cnn_depth=0)
    assert isinstance(decoder, MlpDecoder)
    features = th.randn(4, 7, 9)
    th.testing.assert_close(decoder(features), decoder.net(features).reshape(4, 7, 2, 3))


def cnn_reference(encoder: CnnEncoder, images: th.Tensor) -> th.Tensor:
    """Kernel 4, stride 2, padding 1 convolutions with SiLU on pixels scaled to [-0.5, 0.5]."""
    x = images.float() / 255.0 - 0.5
    for conv in encoder.net[:-1:2]:
        x = silu(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1))
    return x.flatten(1)


@th.no_grad()
@pytest.mark.parametrize("channels_first", [True, False])
def test_cnn_encoder_scales_pixels_and_halves_the_image(channels_first: bool) -> None:
    th.manual_seed(0)
    shape = (3, 16, 8) if channels_first else (16, 8, 3)
    space = spaces.Box(0, 255, shape, np.uint8)
    encoder = make_encoder(space, (6,), 5, cnn_depth=3, symlog_inputs=True)
    assert isinstance(encoder, CnnEncoder) and encoder.n_layers == 1
    # Depths 3, 6: 6 channels of 4x2 after two halvings? No: 8 pixels halve once to 4.
    assert [conv.out_channels for conv in encoder.net[:-1:2]] == [3]
    assert encoder.embed_dim == 3 * 8 * 4
    images = th.randint(0, 256, (2, 3, *shape), dtype=th.uint8)
    channel_first = images if channels_first else images.permute(0, 1, 4, 2, 3)
    expected = cnn_reference(encoder, channel_first.reshape(6, 3, 16, 8)).reshape(2, 3, -1)
    th.testing.assert_close(encoder(images), expected)
    with pytest.raises(ValueError, match="^cnn_depth must"):
        make_encoder(space, (6,), 5, cnn_depth=0, symlog_inputs=True)


@th.no_grad()
def test_cnn_encoder_depth_doubles_per_layer() -> None:
    th.manual_seed(0)
    encoder = CnnEncoder(spaces.Box(0, 255, (32, 64, 1), np.uint8), depth=2)
    assert [conv.out_channels for conv in encoder.net[:-1:2]] == [2, 4, 8]
    assert [conv.kernel_size + conv.stride + conv.padding for conv in encoder.net[:-1:2]] == [
        (4, 4, 2, 2, 1, 1)
    ] * 3
    assert encoder.embed_dim == 8 * 4 * 8
    images = th.randint(0, 256, (5, 32, 64, 1), dtype=th.uint8)
    th.testing.assert_close(encoder(images), cnn_reference(encoder, images.permute(0, 3, 1, 2)))


@th.no_grad()
@pytest.mark.parametrize("channels_first", [True, False])
def test_cnn_decoder_mirrors_the_encoder_and_is_centred_on_grey(channels_first: bool) -> None:
    th.manual_seed(0)
    shape = (1, 16, 32) if channels_first else (16, 32, 1)
    decoder = make_decoder(spaces.Box(0, 255, shape, np.uint8), 6, (5,), cnn_depth=3)
    assert isinstance(decoder, CnnDecoder)
    assert decoder.start_shape == (6, 4, 8) and decoder.linear.out_features == 6 * 4 * 8
    convs = [layer for layer in decoder.net if isinstance(layer, th.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(6, 3), (3, 1)]
    assert [c.kernel_size + c.stride + c.padding for c in convs] == [(4, 4, 2, 2, 1, 1)] * 2
    features = th.randn(2, 3, 6)
    x = linear(decoder.linear, features.reshape(6, 6)).reshape(6, 6, 4, 8)
    x = silu(F.conv_transpose2d(x, convs[0].weight, convs[0].bias, stride=2, padding=1))
    x = F.conv_transpose2d(x, convs[1].weight, convs[1].bias, stride=2, padding=1) + 0.5
    expected = x.reshape(2, 3, 1, 16, 32)
    if not channels_first:
        expected = expected.permute(0, 1, 3, 4, 2)
    out = decoder(features)
    assert out.shape == (2, 3, *shape)
    th.testing.assert_close(out, expected)
    for parameter in decoder.parameters():
        parameter.zero_()
    th.testing.assert_close(decoder(features[0, 0]), th.full(shape, 0.5))
    with pytest.raises(ValueError, match="^cnn_depth must"):
        make_decoder(spaces.Box(0, 255, shape, np.uint8), 6, (5,), cnn_depth=0)


# =========================================================================== world model
def test_action_vector_size() -> None:
    assert action_vector_size(spaces.Discrete(5)) == 5
    assert action_vector_size(spaces.Box(-1, 1, (3,), np.float32)) == 3
    for space in (spaces.Box(-1, 1, (3, 1), np.float32), spaces.MultiBinary(2)):
        with pytest.raises(ValueError, match="^action_space must be a Discrete or a flat Box space"):
            action_vector_size(space)


def test_world_model_defaults_are_dreamerv3s() -> None:
    model = LatentWorldModel(VECTOR, BOX_ACTION)
    rssm = model.rssm
    assert (rssm.latent, rssm.deter_size, rssm.stoch_size, rssm.classes, rssm.hidden_size) == (
        "categorical",
        256,
        32,
        16,
        256,
    )
    assert (rssm.min_std, rssm.unimix, rssm.action_dim, rssm.embed_dim) == (0.1, 0.01, 2, 256)
    assert model.mlp_layers == (256, 256) and model.encoder.embed_dim == 256 and model.symlog
    assert model.encoder.symlog_inputs and model.feature_size == 256 + 32 * 16
    assert (model.kl_dynamics_scale, model.kl_representation_scale, model.free_nats) == (0.5, 0.1, 1.0)
    assert (model.reconstruction_scale, model.reward_scale, model.continuation_scale) == (1.0, 1.0, 1.0)
    assert [layer.out_features for layer in model.reward_head if isinstance(layer, th.nn.Linear)] == [
        256,
        256,
        1,
    ]
    image = LatentWorldModel(
        spaces.Box(0, 255, (8, 8, 3), np.uint8), spaces.Discrete(2), deter_size=4, hidden_size=4
    )
    assert image.encoder.net[0].out_channels == 16 and image.decoder.start_depth == 16
    assert image.rssm.embed_dim == 16 * 4 * 4


def test_world_model_gaussian_sizes_reach_the_rssm() -> None:
    model = LatentWorldModel(VECTOR, spaces.Discrete(3), latent="gaussian", min_std=0.2, unimix=0.3, **SMALL)
    rssm = model.rssm
    assert (rssm.latent, rssm.deter_size, rssm.stoch_size, rssm.classes, rssm.hidden_size) == (
        "gaussian",
        5,
        3,
        1,
        6,
    )
    assert (rssm.min_std, rssm.unimix, rssm.action_dim, rssm.embed_dim) == (0.2, 0.3, 3, 4)
    assert model.feature_size == 8 and model.encoder.net[0].out_features == 7
    assert isinstance(model.decoder, MlpDecoder) and model.decoder.net[0].in_features == 8
    assert model.decoder.net[0].out_features == 7 and model.reward_head[0].out_features == 7
    categorical = LatentWorldModel(VECTOR, BOX_ACTION, latent="categorical", **SMALL)
    assert (categorical.rssm.latent, categorical.rssm.classes, categorical.feature_size) == (
        "categorical",
        4,
        5 + 3 * 4,
    )
    assert (
        categorical.continuation_head[0].in_features == 17
        and categorical.continuation_head[0].out_features == 7
    )


@pytest.mark.parametrize(
    "name, bad, good",
    [
        ("kl_dynamics_scale", -0.1, 0.0),
        ("kl_representation_scale", -0.1, 0.0),
        ("free_nats", -0.1, 0.0),
        ("reconstruction_scale", -0.1, 0.0),
        ("reward_scale", -0.1, 0.0),
        ("continuation_scale", -0.1, 0.0),
        ("symlog", 1, False),
        ("latent", "vq", "gaussian"),
        ("mlp_layers", (4, 0), (4, 1)),
    ],
)
def test_world_model_argument_checks(name: str, bad: Any, good: Any) -> None:
    with pytest.raises(ValueError, match=f"^{name} must"):
        LatentWorldModel(VECTOR, BOX_ACTION, **{**SMALL, name: bad})
    model = LatentWorldModel(VECTOR, BOX_ACTION, **{**SMALL, name: good})
    assert getattr(model, name) == good


def test_conversions_keep_dtypes_and_one_hot_discrete_actions() -> None:
    image = LatentWorldModel(spaces.Box(0, 255, (8, 8, 1), np.uint8), spaces.Discrete(3), **SMALL)
    pixels = image.obs_tensor(np.full((2, 8, 8, 1), 7, np.uint8))
    assert pixels.dtype == th.uint8 and pixels.shape == (2, 8, 8, 1)
    same = th.ones(2, 3)
    assert LatentWorldModel(VECTOR, BOX_ACTION, **SMALL).obs_tensor(same) is same
    th.testing.assert_close(image.action_vector(np.array(2)), th.tensor([0.0, 0.0, 1.0]))
    th.testing.assert_close(
        image.action_vector(th.tensor([[[1]], [[0]]])), th.tensor([[[0.0, 1, 0]], [[1, 0, 0]]])
    )
    th.testing.assert_close(image.action_vector(np.array([0.0, 2.0])), th.tensor([[1.0, 0, 0], [0, 0, 1]]))
    box = LatentWorldModel(VECTOR, BOX_ACTION, **SMALL).action_vector(np.array([[0.25, -1.0]]))
    assert box.dtype == th.float32
    th.testing.assert_close(box, th.tensor([[0.25, -1.0]]))
    one = LatentWorldModel(VECTOR, spaces.Box(-1, 1, (1,), np.float32), **SMALL).action_vector(
        np.array([[0.5]])
    )
    th.testing.assert_close(one, th.tensor([[0.5]]))


def test_targets_and_heads_in_the_envs_units() -> None:
    th.manual_seed(0)
    features = th.randn(2, 4, 8)
    rewards = th.tensor([-5.0, 0.0, 2.0])
    for flag in (True, False):
        model = LatentWorldModel(VECTOR, BOX_ACTION, latent="gaussian", symlog=flag, **SMALL)
        squash = symlog if flag else (lambda x: x)
        unsquash = symexp if flag else (lambda x: x)
        th.testing.assert_close(model.reward_target(rewards), squash(rewards))
        with th.no_grad():
            th.testing.assert_close(model.reward(features), unsquash(model.reward_head(features)[..., 0]))
            th.testing.assert_close(model.decode(features), unsquash(model.decoder(features)))
            logits = model.continuation_head(features)[..., 0]
            th.testing.assert_close(model.continuation_logits(features), logits)
            th.testing.assert_close(model.continuation(features), sigmoid(logits))
        assert model.reward(features).shape == (2, 4)


def test_image_decode_is_in_pixels_clipped_to_0_255() -> None:
    th.manual_seed(0)
    model = LatentWorldModel(
        spaces.Box(0, 255, (8, 8, 1), np.uint8), spaces.Discrete(2), latent="gaussian", **SMALL
    )
    with th.no_grad():
        bias = model.decoder.net[-1].bias
        features = th.randn(3, model.feature_size)
        for shift, check in ((0.0, None), (5.0, 255.0), (-5.0, 0.0)):
            bias.fill_(shift)
            raw = model.decoder(features)
            decoded = model.decode(features)
            th.testing.assert_close(decoded, (raw * 255.0).clamp(0.0, 255.0))
            if check is not None:
                assert (decoded == check).all()
        assert ((decoded >= 0) & (decoded <= 255)).all()
    obs = th.tensor([[0, 51, 255]], dtype=th.uint8)
    th.testing.assert_close(model.observation_target(obs), th.tensor([[0.0, 0.2, 1.0]]))


def test_observe_and_rollout_are_the_one_step_functions_in_a_loop() -> None:
    th.manual_seed(2)
    model = LatentWorldModel(VECTOR, spaces.Discrete(3), latent="gaussian", **SMALL)
    g = th.Generator().manual_seed(0)
    obs = th.randn(2, 4, 3, generator=g)
    actions = th.randint(0, 3, (2, 4), generator=g)
    is_first = np.array([[1, 0, 0, 1], [1, 0, 0, 0]], np.float32)
    start = model.initial_state(2).map(lambda t: t + 0.5)
    posts, priors = model.observe(
        obs, actions, is_first, state=start, generator=th.Generator().manual_seed(1)
    )
    assert posts.deter.shape == (2, 4, 5) and priors.stoch.shape == (2, 4, 3)
    gen = th.Generator().manual_seed(1)
    state = start
    for t in range(4):
        state, prior = model.observe_step(state, actions[:, t], obs[:, t], is_first[:, t], generator=gen)
        th.testing.assert_close(posts.stoch[:, t], state.stoch)
        th.testing.assert_close(priors.stats[1][:, t], prior.stats[1])
    # Without a state the filter starts from the initial state.
    default, _ = model.observe(obs, actions, th.zeros(2, 4), sample=False)
    explicit, _ = model.observe(obs, actions, th.zeros(2, 4), state=model.initial_state(2), sample=False)
    th.testing.assert_close(default.deter, explicit.deter)
    assert not th.equal(
        default.deter, model.observe(obs, actions, th.zeros(2, 4), state=start, sample=False)[0].deter
    )
    plan = th.randint(0, 3, (2, 5), generator=g)
    rolled = model.rollout(state, plan, generator=th.Generator().manual_seed(3))
    assert rolled.deter.shape == (2, 5, 5)
    gen, step = th.Generator().manual_seed(3), state
    for h in range(5):
        step = model.imagine_step(step, plan[:, h], generator=gen)
        th.testing.assert_close(rolled.stoch[:, h], step.stoch)
    mode = model.rollout(state, plan, sample=False)
    th.testing.assert_close(mode.stoch, mode.stats[0])


def test_imagine_starts_from_an_empty_context_and_samples_when_asked() -> None:
    th.manual_seed(1)
    model = LatentWorldModel(VECTOR, BOX_ACTION, latent="gaussian", **SMALL)
    obs = th.randn(2, 1, 3)
    plan = th.rand(2, 3, 2) * 2 - 1
    out = model.imagine(obs, plan)
    assert set(out) == {"obs", "reward", "continuation", "features"}
    with th.no_grad():
        post, _ = model.observe_step(
            model.initial_state(2), th.zeros(2, 2), obs[:, 0], th.ones(2), sample=False
        )
        # A nonzero previous action is ignored at a first step, so compare with the zero action:
        priors = model.rollout(post, plan, sample=False)
    th.testing.assert_close(out["features"], model.features(priors))
    sampled = model.imagine(obs, plan, sample=True, generator=th.Generator().manual_seed(4))
    with th.no_grad():
        gen = th.Generator().manual_seed(4)
        post, _ = model.observe_step(
            model.initial_state(2), th.zeros(2, 2), obs[:, 0], th.ones(2), generator=gen
        )
        priors = model.rollout(post, plan, generator=gen)
    th.testing.assert_close(sampled["features"], model.features(priors))
    assert not out["features"].requires_grad


def test_imagine_shape_errors_name_the_argument_and_the_shape() -> None:
    model = LatentWorldModel(VECTOR, BOX_ACTION, **SMALL)
    with pytest.raises(
        ValueError, match=r"^context_obs must have shape \(batch, context, \*\(3,\)\), got \(2, 3\)$"
    ):
        model.imagine(np.zeros((2, 3), np.float32), np.zeros((2, 1, 2), np.float32))
    with pytest.raises(
        ValueError, match=r"^actions must have shape \(batch=2, horizon, ...\), got \(2, 2\)$"
    ):
        model.imagine(np.zeros((2, 1, 3), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(
        ValueError, match=r"^actions must have shape \(batch=2, horizon, ...\), got \(1, 4, 2\)$"
    ):
        model.imagine(np.zeros((2, 1, 3), np.float32), np.zeros((1, 4, 2), np.float32))
    with pytest.raises(
        ValueError, match=r"^context_actions \(batch, 2, ...\) are needed with 3 context observations$"
    ):
        model.imagine(np.zeros((2, 3, 3), np.float32), np.zeros((2, 1, 2), np.float32))
    with pytest.raises(
        ValueError, match=r"^context_actions must have shape \(batch=2, 2, ...\), got \(2, 3, 2\)$"
    ):
        model.imagine(np.zeros((2, 3, 3), np.float32), np.zeros((2, 1, 2), np.float32), np.zeros((2, 3, 2)))
    with pytest.raises(
        ValueError, match=r"^context_actions must have shape \(batch=2, 2, ...\), got \(1, 2, 2\)$"
    ):
        model.imagine(np.zeros((2, 3, 3), np.float32), np.zeros((2, 1, 2), np.float32), np.zeros((1, 2, 2)))
    with pytest.raises(
        ValueError, match=r"^context_actions must have shape \(batch=2, 2, ...\), got \(2, 2\)$"
    ):
        model.imagine(np.zeros((2, 3, 3), np.float32), np.zeros((2, 1, 2), np.float32), np.zeros((2, 2)))
    out = model.imagine(np.zeros((2, 1, 3), np.float32), np.zeros((2, 4, 2)), np.zeros((2, 0, 2)))
    assert out["obs"].shape == (2, 4, 3)


def categorical_loss_terms(model: LatentWorldModel, batch: SequenceBatch) -> dict[str, th.Tensor]:
    """The loss of the module docstring from the model's posteriors and priors, per step."""
    posts, priors = model.observe(
        batch.observations, batch.actions, batch.is_first, generator=th.Generator().manual_seed(0)
    )
    features = model.features(posts)
    recon = ((model.decoder(features) - batch.observations) ** 2).sum(-1)
    reward = (model.reward_head(features)[..., 0] - batch.rewards) ** 2
    p = sigmoid(model.continuation_head(features)[..., 0])
    y = 1.0 - batch.is_terminal
    cont = -(y * th.log(p) + (1 - y) * th.log(1 - p))
    q_logits, p_logits = posts.stats[0], priors.stats[0]
    kl = (q_logits.exp() * (q_logits - p_logits)).sum((-2, -1))
    return dict(recon=recon, reward=reward, cont=cont, kl=kl, posts=posts)


def test_categorical_loss_with_the_default_weights() -> None:
    th.manual_seed(0)
    model = LatentWorldModel(VECTOR, BOX_ACTION, symlog=False, **SMALL)
    g = th.Generator().manual_seed(1)
    is_first = th.zeros(2, 4)
    is_first[:, 0] = 1
    is_terminal = th.zeros(2, 4)
    is_terminal[0, 3] = 1
    batch = SequenceBatch(
        th.randn(2, 4, 3, generator=g),
        th.rand(2, 4, 2, generator=g),
        th.randn(2, 4, generator=g),
        is_first,
        is_terminal,
    )
    total, terms, posts = model.compute_loss(batch, generator=th.Generator().manual_seed(0))
    with th.no_grad():
        ref = categorical_loss_terms(model, batch)
    kl_term = 0.5 * ref["kl"].clamp(min=1.0) + 0.1 * ref["kl"].clamp(min=1.0)
    expected = (ref["recon"] + ref["reward"] + ref["cont"] + kl_term).mean()
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["reconstruction_loss"].item() == pytest.approx(ref["recon"].mean().item(), rel=1e-5)
    assert terms["reward_loss"].item() == pytest.approx(ref["reward"].mean().item(), rel=1e-5)
    assert terms["continuation_loss"].item() == pytest.approx(ref["cont"].mean().item(), rel=1e-5)
    assert terms["kl_loss"].item() == pytest.approx(kl_term.mean().item(), rel=1e-5)
    assert terms["kl"].item() == pytest.approx(ref["kl"].mean().item(), rel=1e-5)
    th.testing.assert_close(posts.stoch, ref["posts"].stoch)
    loss_only, terms_only = model.loss(batch, generator=th.Generator().manual_seed(0))
    assert loss_only.item() == total.item() and set(terms_only) == set(terms)


def test_image_loss_sums_squared_errors_over_all_pixels() -> None:
    th.manual_seed(0)
    space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    model = LatentWorldModel(
        space, spaces.Discrete(2), latent="gaussian", reward_scale=0.0, continuation_scale=0.0, **SMALL
    )
    obs = th.randint(0, 256, (2, 3, 8, 8, 3), dtype=th.uint8)
    batch = SequenceBatch(
        obs, th.zeros(2, 3, 1), th.zeros(2, 3), th.tensor([[1.0, 0, 0]] * 2), th.zeros(2, 3)
    )
    _, terms, posts = model.compute_loss(batch, generator=th.Generator().manual_seed(0))
    with th.no_grad():
        prediction = model.decoder(model.features(posts))
        expected = ((prediction - obs.float() / 255.0) ** 2).sum((-3, -2, -1)).mean()
    assert terms["reconstruction_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


# =========================================================================== sequence replay
OBS2 = spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACT1 = spaces.Box(-1, 1, (1,), np.float32)


def test_sequence_length_check() -> None:
    assert check_sequence_length(2) == 2
    with pytest.raises(ValueError, match=r"^sequence_length must be an? integer in \[2, inf\)"):
        check_sequence_length(1)
    with pytest.raises(ValueError, match=r"^window must be an? integer in \[2, inf\)"):
        check_sequence_length(1, "window")


def test_buffer_layout_and_bounds() -> None:
    with pytest.raises(ValueError, match=r"^buffer_size must be an? integer in \[4, inf\)"):
        SequenceReplayBuffer(3, OBS2, ACT1, n_envs=2)
    with pytest.raises(ValueError, match=r"^n_envs must be an? integer in \[1, inf\)"):
        SequenceReplayBuffer(8, OBS2, ACT1, n_envs=0)
    with pytest.raises(ValueError, match="^optimize_memory_usage must be False for SequenceReplayBuffer$"):
        SequenceReplayBuffer(8, OBS2, ACT1, optimize_memory_usage=True)
    buffer = SequenceReplayBuffer(9, spaces.Box(0, 255, (8, 8, 1), np.uint8), spaces.Discrete(4), n_envs=2)
    assert (
        buffer.device.type == "cpu" and buffer.n_envs == 2 and buffer.capacity == 4 and buffer.action_dim == 1
    )
    assert buffer.observations.shape == (4, 2, 8, 8, 1) and buffer.observations.dtype == np.uint8
    assert buffer.actions.shape == (4, 2, 1) and buffer.actions.dtype == np.float32
    assert (
        buffer.rewards.dtype == np.float32 and buffer.is_first.dtype == buffer.is_terminal.dtype == np.bool_
    )
    assert buffer.size() == 0 and not buffer.can_sample(2)
    one = SequenceReplayBuffer(2, OBS2, spaces.Box(-1, 1, (3,), np.float32))
    assert one.capacity == 2 and one.n_envs == 1 and one.actions.shape == (2, 1, 3)


def test_add_writes_the_dreamer_step_layout_and_wraps() -> None:
    buffer = SequenceReplayBuffer(8, OBS2, spaces.Box(-1, 1, (2,), np.float32), device="cpu", n_envs=2)
    obs = np.array([[1.0, 1.0], [2.0, 2.0]], np.float32)
    # Transition 1: env 0 terminates, env 1 ends by a time limit.
    buffer.add(
        obs,
        obs + 10,
        np.array([[0.5, -0.5], [0.25, 0.75]]),
        np.array([1.5, -2.0]),
        np.array([True, True]),
        [{}, {"TimeLimit.truncated": True}],
    )
    np.testing.assert_array_equal(buffer.positions, [2, 2])
    np.testing.assert_array_equal(buffer.observations[:2, 0], [[1, 1], [11, 11]])
    np.testing.assert_array_equal(buffer.observations[:2, 1], [[2, 2], [12, 12]])
    np.testing.assert_array_equal(buffer.actions[:2, 0], [[0, 0], [0.5, -0.5]])
    np.testing.assert_array_equal(buffer.actions[:2, 1], [[0, 0], [0.25, 0.75]])
    np.testing.assert_array_equal(buffer.rewards[:2], [[0, 0], [1.5, -2.0]])
    np.testing.assert_array_equal(buffer.is_first[:2], [[True, True], [False, False]])
    np.testing.assert_array_equal(buffer.is_terminal[:2], [[False, False], [True, False]])
    # Both episodes ended: the next transition starts with a first step again; infos may be empty.
    buffer.add(obs + 20, obs + 30, np.zeros((2, 2)), np.array([3.0, 4.0]), np.array([False, False]), [])
    np.testing.assert_array_equal(buffer.observations[:, 0, 0], [1, 11, 21, 31])
    np.testing.assert_array_equal(buffer.is_first[:, 0], [True, False, True, False])
    np.testing.assert_array_equal(buffer.positions, [0, 0])
    assert buffer.full.all() and buffer.size() == 8
    # The episodes go on: one step per transition, overwriting the oldest.
    buffer.add(obs + 30, obs + 40, np.ones((2, 2)), np.array([5.0, 6.0]), np.array([False, False]), [{}, {}])
    np.testing.assert_array_equal(buffer.observations[:, 1, 0], [42, 12, 22, 32])
    np.testing.assert_array_equal(buffer.is_first[:, 1], [False, False, True, False])
    np.testing.assert_array_equal(buffer.rewards[:, 1], [6.0, -2.0, 0.0, 4.0])
    np.testing.assert_array_equal(buffer.stream_sizes(), [4, 4])
    # A reset of the envs (e.g. a new learn()) starts new episodes.
    buffer.start_new_episodes()
    buffer.add(obs, obs, np.ones((2, 2)), np.zeros(2), np.array([False, False]), [{}, {}])
    np.testing.assert_array_equal(buffer.is_first[1:3, 0], [True, False])


def test_scalar_inputs_of_one_env_and_partial_streams() -> None:
    buffer = SequenceReplayBuffer(6, OBS2, spaces.Discrete(3), device="cpu")
    buffer.add(np.zeros(2), np.ones(2), np.array(2), np.array(0.5), np.array(False), [{}])
    np.testing.assert_array_equal(buffer.actions[:2, 0, 0], [0, 2])
    assert buffer.size() == 2 and buffer.can_sample(2) and not buffer.can_sample(3)
    two = SequenceReplayBuffer(8, OBS2, spaces.Discrete(3), device="cpu", n_envs=2)
    for k in range(2):
        two.add(
            np.full((2, 2), k),
            np.full((2, 2), k + 1),
            np.array([1, 1]),
            np.zeros(2),
            np.array([False, k == 0]),
            [{}, {}],
        )
    np.testing.assert_array_equal(two.stream_sizes(), [3, 4])
    assert two.full.tolist() == [False, True] and two.size() == 7


def enumerate_windows(buffer: SequenceReplayBuffer, length: int) -> list[tuple[int, list[int]]]:
    """Every window of ``length`` consecutive stored steps of each stream, oldest first."""
    windows = []
    for env in range(buffer.n_envs):
        size = buffer.stream_sizes()[env]
        oldest = buffer.positions[env] if buffer.full[env] else 0
        order = [(oldest + k) % buffer.capacity for k in range(size)]
        windows += [(env, order[s : s + length]) for s in range(size - length + 1)]
    return windows


def test_window_indices_map_a_uniform_draw_onto_the_valid_windows_in_order() -> None:
    buffer = SequenceReplayBuffer(15, OBS2, ACT1, device="cpu", n_envs=3)
    for k in range(7):  # env 0 writes 8 steps into 5 slots, env 1 is fresh, env 2 has one episode end
        done = np.array([False, False, k == 2])
        buffer.add(np.full((3, 2), k), np.full((3, 2), k + 1), np.zeros((3, 1)), np.zeros(3), done, [{}] * 3)
    windows = enumerate_windows(buffer, 3)
    np.random.seed(11)  # noqa: NPY002 (the buffer samples with numpy's global generator, like SB3's)
    envs, times = buffer.window_indices(500, 3)
    np.random.seed(11)  # noqa: NPY002
    flat = np.random.randint(0, len(windows), size=500)  # noqa: NPY002
    np.testing.assert_array_equal(envs, [windows[i][0] for i in flat])
    np.testing.assert_array_equal(times, [windows[i][1] for i in flat])
    assert set(flat.tolist()) == set(range(len(windows)))
    batch = buffer.sample(500, 3)
    assert batch.observations.dtype == batch.actions.dtype == batch.rewards.dtype == th.float32
    assert batch.is_first.dtype == batch.is_terminal.dtype == th.float32
    assert batch.rewards.shape == batch.is_first.shape == (500, 3) and batch.actions.shape == (500, 3, 1)
    assert batch.observations.device.type == "cpu"


def test_streams_too_short_for_a_window_are_never_drawn() -> None:
    buffer = SequenceReplayBuffer(40, OBS2, ACT1, device="cpu", n_envs=2)
    for k in range(6):
        done = np.array([False, k % 2 == 1])
        buffer.add(np.full((2, 2), k), np.full((2, 2), k + 1), np.zeros((2, 1)), np.zeros(2), done, [{}] * 2)
    np.testing.assert_array_equal(buffer.stream_sizes(), [7, 9])
    np.random.seed(0)  # noqa: NPY002
    envs, times = buffer.window_indices(300, 8)
    assert (envs == 1).all() and set(times[:, 0].tolist()) == {0, 1}
    with pytest.raises(
        ValueError,
        match=r"^sequence_length=10 is longer than every stored stream \(steps per environment: \[7, 9\]\)$",
    ):
        buffer.window_indices(1, 10)
    with pytest.raises(ValueError, match=r"^batch_size must be an? integer in \[1, inf\)"):
        buffer.window_indices(0, 3)
    assert buffer.can_sample(9) and not buffer.can_sample(10)
    image = SequenceReplayBuffer(4, spaces.Box(0, 255, (8, 8, 1), np.uint8), ACT1, device="cpu")
    image.add(np.zeros((8, 8, 1)), np.full((8, 8, 1), 200), np.zeros(1), np.zeros(1), np.array([False]), [{}])
    pixels = image.sample(2, 2).observations
    assert pixels.dtype == th.uint8 and pixels[0, 1].max().item() == 200


# =========================================================================== train-ratio schedule
class ZeroPolicy(BasePolicy):
    """Acts 0 and has one parameter, so that the schedule can be watched without a world model."""

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule, **kwargs: Any
    ):
        super().__init__(observation_space, action_space, squash_output=True)
        self.weight = th.nn.Parameter(th.zeros(1))
        self.optimizer = th.optim.SGD(self.parameters(), lr=lr_schedule(1.0))

    def _predict(self, observation: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return th.zeros(len(observation), *self.action_space.shape)


class ReplayCounter(TrainRatioMixin, OffPolicyAlgorithm):
    """An algorithm whose update only records the batches it gets."""

    log_name: ClassVar[str] = "ReplayCounter"
    policy_aliases: ClassVar[dict] = {"MlpPolicy": ZeroPolicy}

    def __init__(
        self, env: Any, train_ratio: float, batch_size: int = 2, sequence_length: int = 3, **kwargs: Any
    ):
        self.train_ratio, self.sequence_length = train_ratio, sequence_length
        kwargs = {"learning_rate": 0.1, "learning_starts": 0, **kwargs}
        super().__init__(
            "MlpPolicy",
            env,
            buffer_size=200,
            batch_size=batch_size,
            replay_buffer_class=SequenceReplayBuffer,
            support_multi_env=True,
            seed=0,
            device="cpu",
            **kwargs,
        )
        self._update_credit = 0.0
        self.batches: list[SequenceBatch] = []
        self.modes: list[bool] = []
        self._setup_model()

    def update(self, batch: SequenceBatch) -> dict[str, float]:
        self.batches.append(batch)
        self.modes.append(self.policy.training)
        return {"updates_so_far": float(len(self.batches))}


def pendulum(steps: int = 200) -> gym.Env:
    return gym.make("AdvRL/Pendulum-v0", max_episode_steps=steps)


@pytest.mark.parametrize(
    "train_ratio, learning_starts, updates",
    [
        (6.0, 5, 15),  # one update per step after step 5 (6 replayed steps per update)
        (3.0, 5, 7),  # half an update per step, the rest carried over: 15 / 2
        (12.0, 0, 38),  # two per step once a window of 3 steps is stored (steps 2..20)
    ],
)
def test_updates_keep_replayed_over_collected_steps_at_the_train_ratio(
    train_ratio: float, learning_starts: int, updates: int
) -> None:
    model = ReplayCounter(pendulum(), train_ratio, learning_starts=learning_starts)
    model.learn(20)
    assert model.num_timesteps == 20 and model._n_updates == len(model.batches) == updates
    assert all(batch.observations.shape == (2, 3, 3) for batch in model.batches)
    assert all(model.modes) and not model.policy.training
    # Each train() call logs the mean of its updates' values and the update count.
    last = updates if train_ratio != 12.0 else (updates - 1 + updates) / 2
    assert model.logger.name_to_value["train/updates_so_far"] == last
    assert model.logger.name_to_value["train/n_updates"] == updates
    assert model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)


def test_train_freq_collects_several_steps_before_the_updates() -> None:
    model = ReplayCounter(pendulum(), 3.0, train_freq=4)
    model.learn(12)  # 3 rollouts of 4 steps, each worth 4 * 3 / 6 = 2 updates
    assert model._n_updates == 6
    calls = []
    model.train = lambda gradient_steps, batch_size: calls.append((gradient_steps, batch_size))  # type: ignore[method-assign]
    model.learn(8, reset_num_timesteps=False)
    assert model.num_timesteps == 20 and calls == [(2, 2), (2, 2)]


def test_collections_worth_less_than_one_update_do_not_train() -> None:
    model = ReplayCounter(pendulum(), 3.0)
    calls = []
    model.train = lambda gradient_steps, batch_size: calls.append((gradient_steps, batch_size))  # type: ignore[method-assign]
    model.learn(6)  # half an update per step from step 2: updates after steps 3 and 5
    assert calls == [(1, 2), (1, 2)]


def test_train_samples_batch_size_windows_and_follows_the_learning_rate_schedule() -> None:
    model = ReplayCounter(pendulum(), 8.0, learning_rate=lambda progress: 0.5 * progress, sequence_length=4)
    model.learn(10, progress_bar=False)
    assert model._n_updates == 8  # one per step from step 3, when 4 steps (a window) are stored
    progress = model._current_progress_remaining
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.5 * progress
    assert model.logger.name_to_value["train/learning_rate"] == 0.5 * progress
    model.batches.clear()
    model.train(1)  # the default batch size: 16 windows
    assert len(model.batches) == 1 and model.batches[0].rewards.shape == (16, 4)
    model.train(2, batch_size=3)
    assert [batch.rewards.shape for batch in model.batches[1:]] == [(3, 4), (3, 4)]
    assert model.modes[-1] and not model.policy.training


class StopAfter(BaseCallback):
    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.ended = steps, False
        self.started_with: tuple = ()

    def _on_training_start(self) -> None:
        self.started_with = (self.locals["total_timesteps"], self.globals["TrainRatioMixin"])

    def _on_step(self) -> bool:
        return self.num_timesteps < self.steps

    def _on_training_end(self) -> None:
        self.ended = True


def test_a_callback_stops_learning_and_is_told_the_training_ended() -> None:
    model = ReplayCounter(pendulum(), 6.0)
    callback = StopAfter(4)
    model.learn(50, callback=callback)
    assert model.num_timesteps == 4 and callback.ended
    assert callback.started_with == (
        50,
        TrainRatioMixin,
    )  # the locals and globals of learn, as SB3 gives them
    assert model._n_updates == 2  # steps 2 and 3: the stopped rollout trains no more


def test_runs_are_logged_under_the_algorithms_name(tmp_path: Path) -> None:
    model = ReplayCounter(pendulum(), 6.0, tensorboard_log=str(tmp_path))
    model.learn(3)
    model.learn(3, tb_log_name="other", reset_num_timesteps=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ReplayCounter_1",
        "other_0",
    ]  # "_0": a continued run (SB3)
    assert model.num_timesteps == 6


def test_episodes_between_logger_dumps_and_action_noise() -> None:
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.noise import NormalActionNoise

    dumps = []
    for log_interval in (1, 4):
        model = ReplayCounter(pendulum(3), 6.0)
        logger = configure(None, [])
        logger.dump = lambda step=0, every=log_interval: dumps.append((every, step))  # type: ignore[method-assign]
        model.set_logger(logger)
        model.learn(12, **({} if log_interval == 4 else {"log_interval": log_interval}))  # 4: the default
    assert dumps == [(1, 3), (1, 6), (1, 9), (1, 12), (4, 12)]
    assert dumps.count((4, 12)) == 1
    quiet = ReplayCounter(pendulum(), 6.0)
    quiet.learn(3)
    np.testing.assert_array_equal(quiet.replay_buffer.actions[:4, 0, 0], [0, 0, 0, 0])
    noisy = ReplayCounter(pendulum(), 6.0, action_noise=NormalActionNoise(np.zeros(1), np.full(1, 0.3)))
    noisy.learn(3)
    assert (noisy.replay_buffer.actions[1:4, 0, 0] != 0).all()


@pytest.mark.filterwarnings("ignore:rich is experimental")
def test_progress_bar(capsys: pytest.CaptureFixture) -> None:
    model = ReplayCounter(pendulum(), 6.0)
    model.learn(5, progress_bar=True)
    assert "5/5" in capsys.readouterr().out
    model.learn(5)  # no bar by default
    assert "5/5" not in capsys.readouterr().out


# =========================================================================== prediction strips
STRIP_MODEL = dict(deter_size=4, stoch_size=2, hidden_size=4, mlp_layers=[4], embed_dim=4, cnn_depth=2)


def pixel_pendulum(size: int = 16) -> gym.Env:
    return gym.wrappers.AddRenderObservation(
        gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=size, height=size)
    )


def test_world_model_of_a_model_or_an_algorithm() -> None:
    model = LatentWorldModel(VECTOR, BOX_ACTION, **SMALL)
    assert prediction_strip.world_model_of(model) is model

    class Policy:
        world_model = model

    class Algorithm:
        policy = Policy()

    assert prediction_strip.world_model_of(Algorithm()) is model
    Policy.world_model = "not a model"
    for thing in (Algorithm(), object()):
        with pytest.raises(
            ValueError,
            match=f"^model must be a LatentWorldModel or an algorithm whose policy has one, got {type(thing)}$",
        ):
            prediction_strip.world_model_of(thing)


def test_frames_between_the_env_and_the_model_layouts() -> None:
    frame = np.arange(4 * 8 * 3).reshape(4, 8, 3)
    assert prediction_strip._to_model_layout(frame, (4, 8, 3)) is frame
    np.testing.assert_array_equal(
        prediction_strip._to_model_layout(frame, (3, 4, 8)), frame.transpose(2, 0, 1)
    )
    with pytest.raises(
        ValueError,
        match=r"^the env's observations \(4, 8, 3\) do not match the model's observation space \(3, 8, 4\)$",
    ):
        prediction_strip._to_model_layout(frame, (3, 8, 4))
    with pytest.raises(ValueError, match="do not match"):
        prediction_strip._to_model_layout(np.zeros((4, 8)), (8, 4))
    floats = np.array([[[[-3.0, 0.4, 0.6], [254.4, 254.6, 300.0]]]])  # (1, 1, 2, 3)
    picture = prediction_strip._to_picture(floats, channels_first=False)
    assert picture.dtype == np.uint8
    np.testing.assert_array_equal(picture, [[[[0, 0, 1], [254, 255, 255]]]])
    first = prediction_strip._to_picture(floats.transpose(0, 3, 1, 2), channels_first=True)
    np.testing.assert_array_equal(first, picture)


def test_box_actions_are_scaled_as_sb3_scales_the_training_actions() -> None:
    from types import SimpleNamespace

    box = spaces.Box(np.array([-2.0, 0.3], np.float32), np.array([2.0, 1.7], np.float32), dtype=np.float32)
    holder = SimpleNamespace(action_space=box)
    rng = np.random.default_rng(0)
    for actions in (
        rng.uniform(box.low, box.high, (50, 2)).astype(np.float32),
        rng.uniform(box.low, box.high, (50, 2)),
    ):
        for action in actions:
            expected = BasePolicy.scale_action(holder, action).astype(np.float32)  # type: ignore[arg-type]
            np.testing.assert_array_equal(prediction_strip._model_action(action, box), expected)


def test_a_strip_with_rows_of_different_lengths_is_refused(tmp_path: Path) -> None:
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    strip = prediction_strip.PredictionStrip(frames[:1], frames, frames[:1])
    with pytest.raises(ValueError, match="zip"):
        prediction_strip.save_prediction_strip(strip, tmp_path / "s.png", gif_path=tmp_path / "s.gif")


def test_env_actions_in_the_models_units() -> None:
    box = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 4.0], np.float32), dtype=np.float32)
    scaled = prediction_strip._model_action(np.array([1.0, 1.0]), box)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [0.5, -0.5])
    np.testing.assert_allclose(prediction_strip._model_action(np.array([-2.0, 4.0]), box), [-1.0, 1.0])
    for action in (np.int64(3), np.int32(3), 3, np.array([3], np.int16)):
        index = prediction_strip._model_action(action, spaces.Discrete(4))
        assert index.dtype == np.int64 and index.shape == (1,) and index[0] == 3


def replay_episode(env: gym.Env, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    env.action_space.seed(seed)
    frames, actions, raw = [env.reset(seed=seed)[0]], [], []
    for _ in range(steps):
        action = env.action_space.sample()
        raw.append(action)
        actions.append(prediction_strip._model_action(action, env.action_space))
        frames.append(env.step(action)[0])
    return np.stack(frames), np.stack(actions), raw


def test_collect_prediction_defaults_and_a_single_context_frame() -> None:
    env = pixel_pendulum()
    th.manual_seed(0)
    model = LatentWorldModel(env.observation_space, env.action_space, **STRIP_MODEL)
    strip = prediction_strip.collect_prediction(model, env)  # horizon 30, context 5, seed 0
    assert strip.real.shape == strip.predicted.shape == (30, 16, 16, 3) and strip.context.shape == (
        5,
        16,
        16,
        3,
    )
    frames, actions, _ = replay_episode(pixel_pendulum(), 34, seed=0)
    np.testing.assert_array_equal(strip.context, frames[:5])
    np.testing.assert_array_equal(strip.real, frames[5:])
    single = prediction_strip.collect_prediction(model, env, horizon=3, context=1, seed=2)
    frames, actions, _ = replay_episode(pixel_pendulum(), 3, seed=2)
    expected = model.imagine(frames[None, :1], actions[None])["obs"][0].numpy()
    np.testing.assert_array_equal(single.predicted, np.clip(np.rint(expected), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(single.real, frames[1:])


class ScriptedAlgorithm:
    """Acts 1, 2, 3, ... and records what ``predict`` was given."""

    def __init__(self, model: LatentWorldModel):
        self.policy = type("Policy", (), {"world_model": model})()
        self.calls: list[tuple] = []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        assert episode_start.dtype == np.bool_
        self.calls.append((obs.shape, state, episode_start.tolist(), deterministic))
        return np.int64(len(self.calls) % 4), len(self.calls)


def test_an_algorithm_chooses_the_actions_with_its_recurrent_state() -> None:
    env = gym.make("AdvRL/GridWorld-v0", obs_mode="rgb", size=4)
    th.manual_seed(0)
    model = LatentWorldModel(env.observation_space, env.action_space, **STRIP_MODEL)
    algorithm = ScriptedAlgorithm(model)
    strip = prediction_strip.collect_prediction(algorithm, env, horizon=2, context=2, seed=3)
    assert [call[1:] for call in algorithm.calls] == [
        (None, [True], True),
        (1, [False], True),
        (2, [False], True),
    ]
    assert strip.real.shape == (2, 32, 32, 3)
    prediction_strip.collect_prediction(algorithm, env, horizon=1, context=1, deterministic=False)
    assert algorithm.calls[-1][3] is False
    replay = gym.make("AdvRL/GridWorld-v0", obs_mode="rgb", size=4)
    frames = [replay.reset(seed=3)[0]] + [replay.step(a)[0] for a in (1, 2, 3)]
    np.testing.assert_array_equal(strip.context, np.stack(frames[:2]))
    np.testing.assert_array_equal(strip.real, np.stack(frames[2:]))
    expected = model.imagine(
        np.stack(frames[:2])[None], np.array([[[2], [3]]]), context_actions=np.array([[[1]]])
    )
    np.testing.assert_array_equal(
        strip.predicted, np.clip(np.rint(expected["obs"][0].numpy()), 0, 255).astype(np.uint8)
    )
    # Something that holds a world model but cannot act gets the random actions of a bare model.
    holder = type("Holder", (), {"policy": algorithm.policy})()
    random_strip = prediction_strip.collect_prediction(holder, env, horizon=2, context=2, seed=3)
    bare_strip = prediction_strip.collect_prediction(model, env, horizon=2, context=2, seed=3)
    np.testing.assert_array_equal(random_strip.real, bare_strip.real)
    np.testing.assert_array_equal(random_strip.predicted, bare_strip.predicted)


def test_channel_first_models_get_channel_first_frames_and_give_pictures() -> None:
    env = pixel_pendulum()
    th.manual_seed(0)
    model = LatentWorldModel(spaces.Box(0, 255, (3, 16, 16), np.uint8), env.action_space, **STRIP_MODEL)
    strip = prediction_strip.collect_prediction(model, env, horizon=2, context=2, seed=1)
    frames, actions, _ = replay_episode(pixel_pendulum(), 3, seed=1)
    np.testing.assert_array_equal(strip.real, frames[2:])
    np.testing.assert_array_equal(strip.context, frames[:2])
    first = frames.transpose(0, 3, 1, 2)
    expected = model.imagine(first[None, :2], actions[None, 1:], context_actions=actions[None, :1])["obs"][0]
    picture = np.clip(np.rint(expected.numpy().transpose(0, 2, 3, 1)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(strip.predicted, picture)


def test_an_episode_too_short_for_the_strip() -> None:
    env = gym.wrappers.AddRenderObservation(
        gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=16, height=16, max_episode_steps=6)
    )
    model = LatentWorldModel(env.observation_space, env.action_space, **STRIP_MODEL)
    strip = prediction_strip.collect_prediction(model, env, horizon=3, context=4)  # 6 steps are just enough
    assert strip.real.shape[0] == 3
    with pytest.raises(
        ValueError, match=r"^the episode ended after 6 steps; context \+ horizon - 1 = 7 are needed$"
    ):
        prediction_strip.collect_prediction(model, env, horizon=4, context=4)
    with pytest.raises(ValueError, match=r"^horizon must be an? integer in \[1, inf\)"):
        prediction_strip.collect_prediction(model, env, horizon=0)
    with pytest.raises(ValueError, match=r"^context must be an? integer in \[1, inf\)"):
        prediction_strip.collect_prediction(model, env, context=0)
    vector = LatentWorldModel(VECTOR, BOX_ACTION, **SMALL)
    with pytest.raises(ValueError, match=r"^a prediction strip needs a model of image observations, got Box"):
        prediction_strip.collect_prediction(vector, env)


def test_strip_image_gap_and_saved_files(tmp_path: Path) -> None:
    real = np.zeros((3, 4, 5, 3), np.uint8)
    predicted = np.full((3, 4, 5, 3), 100, np.uint8)
    for k in range(3):
        real[k] = 10 * (k + 1)
    strip = prediction_strip.PredictionStrip(real, predicted, real[:1])
    image = prediction_strip.strip_image(strip, gap=0)
    assert image.shape == (8, 15, 3)
    np.testing.assert_array_equal(image[:4, 5:10], real[1])
    np.testing.assert_array_equal(image[4:, 10:], predicted[2])
    assert prediction_strip.strip_image(strip).shape == (2 * 4 + 2, 3 * 5 + 2 * 2, 3)
    path = prediction_strip.save_prediction_strip(strip, tmp_path / "a" / "b" / "strip.png")
    assert path == tmp_path / "a" / "b" / "strip.png"
    saved = np.rint(plt_imread(path)[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(saved, prediction_strip.strip_image(strip))
    with pytest.raises(ValueError, match=r"^scale must be an? integer in \[1, inf\)"):
        prediction_strip.save_prediction_strip(strip, tmp_path / "x.png", scale=0)
    imageio = pytest.importorskip("imageio.v2")
    gif = tmp_path / "c" / "d" / "strip.gif"
    prediction_strip.save_prediction_strip(strip, tmp_path / "s.png", gif_path=gif, scale=3)
    frames = imageio.mimread(gif)
    assert len(frames) == 3 and frames[1].shape[:2] == (12, 3 * (5 + 2 + 5))
    np.testing.assert_array_equal(frames[1][::3, :15:3, :3], real[1])
    np.testing.assert_array_equal(frames[1][::3, 21::3, :3], predicted[1])
    assert (frames[1][:, 15:21, :3] == 255).all()
    from PIL import Image

    with Image.open(gif) as opened:  # 0.1 s per frame, looping forever
        opened.seek(1)
        assert opened.info["duration"] == 100 and opened.info["loop"] == 0


def test_a_gif_without_imageio_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "imageio.v2", None)
    strip = prediction_strip.PredictionStrip(
        np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 4, 4, 3), np.uint8)
    )
    with pytest.raises(ImportError, match=r'^a GIF needs imageio: pip install "gym-advrl\[gif\]"$'):
        prediction_strip.save_prediction_strip(strip, tmp_path / "s.png", gif_path=tmp_path / "s.gif")


def plt_imread(path: Path) -> np.ndarray:
    import matplotlib.pyplot as plt

    return plt.imread(path)


# =========================================================================== device placement
@pytest.mark.parametrize("latent", ["gaussian", "categorical"])
def test_every_tensor_the_model_makes_is_on_its_device(latent: str) -> None:
    """On PyTorch's "meta" device (shapes only) a tensor left on the CPU fails any operation with it."""
    model = LatentWorldModel(VECTOR, spaces.Discrete(3), latent=latent, **SMALL).to("meta")
    state = model.initial_state(2)
    assert {t.device.type for t in (state.deter, state.stoch, *state.stats)} == {"meta"}
    for is_first in (np.array([1.0, 0.0]), th.tensor([True, False], device="meta"), [True, False]):
        post, prior = model.observe_step(state, np.array([1, 2]), np.zeros((2, 3), np.float32), is_first)
        assert post.stoch.device.type == prior.deter.device.type == "meta"
    for is_first in (np.zeros((2, 4)), th.zeros(2, 4, device="meta")):
        posts, _ = model.observe(np.zeros((2, 4, 3), np.float32), np.zeros((2, 4), np.int64), is_first)
        assert posts.deter.shape == (2, 4, 5) and posts.deter.device.type == "meta"
    assert model.rollout(post, np.zeros((2, 3), np.int64)).deter.device.type == "meta"
    assert model.imagine_step(post, th.ones(2, device="meta")).stoch.device.type == "meta"
    for context_actions, context in ((None, 1), (np.zeros((2, 2), np.int64), 3)):
        out = model.imagine(
            np.zeros((2, context, 3), np.float32), np.zeros((2, 4), np.int64), context_actions
        )
        assert {v.device.type for v in out.values()} == {"meta"}
    assert model.action_vector([0, 2]).device.type == model.obs_tensor([[0.0] * 3]).device.type == "meta"
    zeros = th.zeros(2, 4, device="meta")
    batch = SequenceBatch(th.zeros(2, 4, 3, device="meta"), zeros[..., None], zeros, zeros, zeros)
    assert model.loss(batch)[0].device.type == "meta"
    image = LatentWorldModel(spaces.Box(0, 255, (8, 8, 1), np.uint8), BOX_ACTION, latent=latent, **SMALL).to(
        "meta"
    )
    out = image.imagine(np.zeros((2, 1, 8, 8, 1), np.uint8), np.zeros((2, 2, 2), np.float32))
    assert out["obs"].shape == (2, 2, 8, 8, 1) and out["obs"].device.type == "meta"
    assert RSSM(1, 1, latent=latent).initial_state(3, "meta").deter.device.type == "meta"


def test_sampled_sequences_are_on_the_buffers_device() -> None:
    buffer = SequenceReplayBuffer(10, VECTOR, spaces.Discrete(3), device="meta")
    buffer.add(np.zeros(3), np.ones(3), np.array([1]), np.array([0.5]), np.array([False]), [{}])
    batch = buffer.sample(2, 2)
    assert {t.device.type for t in batch} == {"meta"}


@th.no_grad()
@pytest.mark.parametrize("shape, layers", [((32, 64, 3), 3), ((3, 64, 64), 4)])
def test_deep_cnn_decoders_double_the_depth_per_layer_and_restore_the_image(
    shape: tuple[int, ...], layers: int
) -> None:
    space = spaces.Box(0, 255, shape, np.uint8)
    decoder = CnnDecoder(space, 6, depth=2)
    encoder = CnnEncoder(space, depth=2)
    convs = [layer for layer in decoder.net if isinstance(layer, th.nn.ConvTranspose2d)]
    depths = [2 * 2**i for i in reversed(range(layers))]  # 2 * 2**(n-1), ..., 4, 2
    assert [(c.in_channels, c.out_channels) for c in convs] == list(
        zip(depths, depths[1:] + [3], strict=True)
    )
    assert encoder.embed_dim == int(np.prod(decoder.start_shape)) == depths[0] * (shape[-2] // 2**layers) * 4
    assert decoder(th.zeros(2, 6)).shape == (2, *shape)


def test_free_nats_and_kl_scales_reach_the_loss() -> None:
    th.manual_seed(0)
    model = LatentWorldModel(
        VECTOR, BOX_ACTION, kl_dynamics_scale=0.3, kl_representation_scale=0.2, free_nats=100.0, **SMALL
    )
    batch = SequenceBatch(
        th.randn(2, 3, 3), th.zeros(2, 3, 2), th.zeros(2, 3), th.zeros(2, 3), th.zeros(2, 3)
    )
    _, terms = model.loss(batch)
    assert terms["kl"].item() < 100.0
    assert terms["kl_loss"].item() == pytest.approx(0.5 * 100.0)


def test_a_termination_without_infos_is_terminal() -> None:
    buffer = SequenceReplayBuffer(6, OBS2, ACT1, device="cpu")
    buffer.add(np.zeros(2), np.ones(2), np.zeros(1), np.ones(1), np.array([True]), [])
    np.testing.assert_array_equal(buffer.is_terminal[:2, 0], [False, True])
    assert buffer.full.dtype == np.bool_ and not buffer.full[0]


def test_random_actions_until_learning_starts() -> None:
    model = ReplayCounter(pendulum(), 6.0, learning_starts=4)
    model.learn(8)
    stored = model.replay_buffer.actions[1:9, 0, 0]  # after the first step's zero action
    assert (stored[:4] != 0).all() and (stored[4:] == 0).all()  # ZeroPolicy acts 0 from step 5


def test_states_with_different_distributions_do_not_stack() -> None:
    one = RSSMState(th.zeros(1, 2), th.zeros(1, 3), (th.zeros(1, 3), th.ones(1, 3)))
    other = RSSMState(th.zeros(1, 2), th.zeros(1, 3), (th.zeros(1, 3),))
    with pytest.raises(ValueError, match="zip"):
        RSSMState.stack([one, other])


def test_conversions_take_lists_of_tensors() -> None:
    model = LatentWorldModel(VECTOR, BOX_ACTION, latent="gaussian", **SMALL)
    th.testing.assert_close(model.obs_tensor([th.ones(3), th.zeros(3)]), th.stack([th.ones(3), th.zeros(3)]))
    actions = model.action_vector([th.tensor([0.5, -0.5]), th.tensor([1.0, 0.0])])
    th.testing.assert_close(actions, th.tensor([[0.5, -0.5], [1.0, 0.0]]))
    is_first = [th.tensor([1.0, 0.0, 0.0]), th.tensor([1.0, 0.0, 1.0])]  # one tensor per sequence
    posts, _ = model.observe(th.zeros(2, 3, 3), th.zeros(2, 3, 2), is_first, sample=False)
    expected, _ = model.observe(th.zeros(2, 3, 3), th.zeros(2, 3, 2), th.stack(is_first), sample=False)
    th.testing.assert_close(posts.deter, expected.deter)
    post, _ = model.observe_step(
        model.initial_state(2), th.zeros(2, 2), th.zeros(2, 3), [th.tensor([1.0, 0.0])]
    )
    assert post.deter.shape == (2, 5)
    discrete = LatentWorldModel(VECTOR, spaces.Discrete(3), **SMALL)
    th.testing.assert_close(
        discrete.action_vector(np.array([2])), th.tensor([0.0, 0.0, 1.0])
    )  # (..., 1) with ... = ()


def test_any_channel_count_is_an_image_and_the_smallest_sizes_are_allowed() -> None:
    two_channels = spaces.Box(0, 255, (8, 8, 2), np.uint8)
    assert check_observation_space(two_channels) is True
    assert isinstance(make_encoder(two_channels, (4,), 4, cnn_depth=1, symlog_inputs=False), CnnEncoder)
    decoder = make_decoder(two_channels, 3, (4,), cnn_depth=1)
    assert isinstance(decoder, CnnDecoder) and decoder(th.zeros(1, 3)).shape == (1, 8, 8, 2)
    encoder = make_encoder(VECTOR, (4,), 1, cnn_depth=0, symlog_inputs=False)
    assert encoder(th.zeros(2, 3)).shape == (2, 1)


@th.no_grad()
def test_a_float64_model_draws_float64_noise() -> None:
    """The Gaussian sample is ``mean + std * noise`` with the noise drawn in the model's dtype."""
    rssm = gaussian_rssm().double()
    state = random_state(rssm, 4)
    state = RSSMState(state.deter.double(), state.stoch.double(), tuple(s.double() for s in state.stats))
    action = th.randn(4, 2, generator=th.Generator().manual_seed(1), dtype=th.float64)
    sampled = rssm.imagine_step(state, action, th.Generator().manual_seed(7))
    mode = rssm.imagine_step(state, action, sample=False)
    noise = th.randn(4, rssm.stoch_size, generator=th.Generator().manual_seed(7), dtype=th.float64)
    assert sampled.stoch.dtype == th.float64
    th.testing.assert_close(sampled.stoch, mode.stoch + mode.stats[1] * noise, rtol=0.0, atol=0.0)


def test_train_ratio_mixin_checks_and_sets_its_arguments():
    class Holder(TrainRatioMixin):
        env = None

    holder = Holder()
    holder._set_train_ratio(2, 1e-9)  # the smallest sequence and any positive ratio
    assert (holder.sequence_length, holder.train_ratio, holder._update_credit) == (2, 1e-9, 0.0)
    holder._set_train_ratio(7, 0.25)
    assert (holder.sequence_length, holder.train_ratio) == (7, 0.25)
    with pytest.raises(ValueError, match=re.escape("sequence_length must be an integer in [2, inf), got 1")):
        holder._set_train_ratio(1, 0.25)
    with pytest.raises(ValueError, match=re.escape("train_ratio must be a number in (0, inf), got 0.0")):
        holder._set_train_ratio(4, 0.0)
    with pytest.raises(ValueError, match=re.escape("train_ratio must be a number in (0, inf), got -1.0")):
        holder._set_train_ratio(4, -1.0)
    # Without an env there is nothing to check yet; with one, its spaces are checked.
    holder.observation_space = spaces.Discrete(3)
    holder._check_world_model_spaces()
    holder.env = object()
    with pytest.raises(ValueError, match="observation"):
        holder._check_world_model_spaces()
