"""RSSM: KL balancing and free nats, categorical latents (unimix, straight-through), and a fit of a
known linear system whose open-loop prediction error is bounded."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_ext.common.rssm import RSSM, kl_divergence, kl_loss, straight_through_sample, unimix_probs
from sb3_ext.common.sequence_buffer import SequenceBatch
from sb3_ext.common.world_model import LatentWorldModel

# KL(N(1, 0.5^2) || N(0, 1)) = log(1 / 0.5) + (0.5^2 + 1^2) / 2 - 1/2
GAUSSIAN_KL = math.log(2.0) + 1.25 / 2.0 - 0.5
# KL(Cat(.75, .25) || Cat(.5, .5))
CATEGORICAL_KL = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)


def gaussian_stats(requires_grad: bool = True):
    post = (th.tensor([[1.0]], requires_grad=requires_grad), th.tensor([[0.5]], requires_grad=requires_grad))
    prior = (th.tensor([[0.0]], requires_grad=requires_grad), th.tensor([[1.0]], requires_grad=requires_grad))
    return post, prior


def test_gaussian_kl_matches_the_closed_form() -> None:
    post, prior = gaussian_stats(False)
    assert kl_divergence("gaussian", post, prior).item() == pytest.approx(GAUSSIAN_KL, rel=1e-6)


def test_categorical_kl_matches_hand_computation() -> None:
    post = (th.log(th.tensor([[[0.75, 0.25]]])),)
    prior = (th.log(th.tensor([[[0.5, 0.5]]])),)
    assert kl_divergence("categorical", post, prior).item() == pytest.approx(CATEGORICAL_KL, rel=1e-6)


def test_kl_balancing_values_and_gradients_above_the_free_nats() -> None:
    post, prior = gaussian_stats()
    loss, kl = kl_loss("gaussian", post, prior, dynamics_scale=0.5, representation_scale=0.1, free_nats=0.5)
    assert kl.item() == pytest.approx(GAUSSIAN_KL, rel=1e-6)
    # Both terms have the value KL (0.818 > 0.5 free nats): 0.5 KL + 0.1 KL.
    assert loss.item() == pytest.approx(0.6 * GAUSSIAN_KL, rel=1e-6)
    loss.sum().backward()
    # dKL/dm_p = (m_p - m_q) / s_p^2 = -1 reaches the prior through the dynamics term only (x 0.5);
    # dKL/dm_q = (m_q - m_p) / s_p^2 = +1 reaches the posterior through the representation term (x 0.1).
    assert prior[0].grad.item() == pytest.approx(-0.5, rel=1e-6)
    assert post[0].grad.item() == pytest.approx(0.1, rel=1e-6)
    # dKL/ds_p = 1/s_p - (s_q^2 + (m_q - m_p)^2) / s_p^3 = 1 - 1.25; dKL/ds_q = -1/s_q + s_q / s_p^2 = -2 + 0.5.
    assert prior[1].grad.item() == pytest.approx(0.5 * (1 - 1.25), rel=1e-6)
    assert post[1].grad.item() == pytest.approx(0.1 * (-2 + 0.5), rel=1e-6)


def test_free_nats_clip_each_term_and_stop_its_gradient() -> None:
    post, prior = gaussian_stats()
    loss, kl = kl_loss("gaussian", post, prior, dynamics_scale=0.5, representation_scale=0.1, free_nats=1.0)
    # KL = 0.818 < 1 free nat: each term is max(1, KL) = 1.
    assert kl.item() == pytest.approx(GAUSSIAN_KL, rel=1e-6)
    assert loss.item() == pytest.approx(0.5 * 1.0 + 0.1 * 1.0)
    loss.sum().backward()
    for tensor in (*post, *prior):
        assert tensor.grad is None or tensor.grad.abs().max().item() == 0.0


def test_kl_loss_is_per_step_and_sums_latent_dimensions() -> None:
    # Two steps: step 0 has KL 2 * 0.818 (two identical dims) > 1, step 1 has KL 0 (clipped to 1).
    m_q = th.tensor([[1.0, 1.0], [0.0, 0.0]])
    s_q = th.tensor([[0.5, 0.5], [1.0, 1.0]])
    zeros, ones = th.zeros(2, 2), th.ones(2, 2)
    loss, kl = kl_loss("gaussian", (m_q, s_q), (zeros, ones), 0.8, 0.2, 1.0)
    np.testing.assert_allclose(kl.numpy(), [2 * GAUSSIAN_KL, 0.0], atol=1e-6)
    np.testing.assert_allclose(loss.numpy(), [2 * GAUSSIAN_KL, 1.0], rtol=1e-6)


def test_unimix_probabilities_match_hand_computation() -> None:
    logits = th.tensor([[0.0, math.log(3.0)]])  # softmax (0.25, 0.75)
    probs = unimix_probs(logits, 0.01)
    np.testing.assert_allclose(probs.numpy(), [[0.99 * 0.25 + 0.005, 0.99 * 0.75 + 0.005]], rtol=1e-6)
    # No class can fall below 1% / classes: here 0.005 even for a -inf logit.
    assert unimix_probs(th.tensor([[-1e9, 0.0]]), 0.01)[0, 0].item() == pytest.approx(0.005, rel=1e-6)


def test_straight_through_sample_is_one_hot_with_the_gradient_of_the_probabilities() -> None:
    logits = th.tensor([[0.3, -0.2, 1.1]], requires_grad=True)
    probs = unimix_probs(logits, 0.01)
    sample = straight_through_sample(probs, th.Generator().manual_seed(0))
    assert sorted(sample.detach().numpy().ravel().tolist()) == [0.0, 0.0, 1.0]
    weights = th.tensor([[1.0, -2.0, 0.5]])
    (grad_sample,) = th.autograd.grad((sample * weights).sum(), logits)
    (grad_probs,) = th.autograd.grad((unimix_probs(logits, 0.01) * weights).sum(), logits)
    np.testing.assert_allclose(grad_sample.numpy(), grad_probs.numpy(), rtol=1e-6)


def test_categorical_samples_follow_the_mixed_probabilities() -> None:
    probs = unimix_probs(th.tensor([[0.0, math.log(3.0)]]).expand(20_000, 2), 0.01)
    sample = straight_through_sample(probs, th.Generator().manual_seed(1))
    assert sample[:, 1].mean().item() == pytest.approx(0.7475, abs=0.01)


def test_is_first_resets_the_state_and_the_previous_action() -> None:
    th.manual_seed(0)
    rssm = RSSM(
        action_dim=2, embed_dim=3, deter_size=8, stoch_size=4, classes=3, hidden_size=8, latent="categorical"
    )
    embed, action = th.randn(2, 3), th.randn(2, 2)
    busy = rssm.observe_step(rssm.initial_state(2), action, embed, th.zeros(2), sample=False)[0]
    after_reset = rssm.observe_step(busy, action, embed, th.ones(2), sample=False)[0]
    fresh = rssm.observe_step(rssm.initial_state(2), th.zeros(2, 2), embed, th.zeros(2), sample=False)[0]
    th.testing.assert_close(after_reset.deter, fresh.deter)
    th.testing.assert_close(after_reset.stats[0], fresh.stats[0])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(latent="vq"), "latent"),
        (dict(deter_size=0), "deter_size"),
        (dict(latent="categorical", classes=1), "classes"),
        (dict(unimix=1.5), "unimix"),
    ],
)
def test_bad_rssm_arguments_are_value_errors_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RSSM(action_dim=1, embed_dim=4, **kwargs)


# --------------------------------------------------------------------------- fitting a known system
ANGLE = 0.3
A = 0.97 * np.array([[np.cos(ANGLE), -np.sin(ANGLE)], [np.sin(ANGLE), np.cos(ANGLE)]])
B = np.array([[0.0], [0.3]])


def linear_system(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x_{t+1} = A x_t + B u_t`` (a damped rotation driven by a uniform control): observations
    ``(n, length, 2)`` and the actions that led to them ``(n, length, 1)`` (zero at t = 0)."""
    x = rng.uniform(-1, 1, (n, 2))
    u = rng.uniform(-1, 1, (n, length, 1))
    observations = []
    for t in range(length):
        observations.append(x.copy())
        x = x @ A.T + u[:, t] @ B.T
    previous = np.concatenate([np.zeros((n, 1, 1)), u[:, :-1]], axis=1)
    return np.stack(observations, 1).astype(np.float32), previous.astype(np.float32)


def test_rssm_fits_a_linear_system_open_loop() -> None:
    """After 120 Adam steps the open-loop prediction 10 steps past a 10-step context is within 0.35
    (Euclidean, mean over 64 test sequences; the state's scale is about 1) and at least 3x better
    than holding the last observed state."""
    th.manual_seed(0)
    rng = np.random.default_rng(0)
    model = LatentWorldModel(
        spaces.Box(-5, 5, (2,), np.float32),
        spaces.Box(-1, 1, (1,), np.float32),
        latent="gaussian",
        deter_size=32,
        stoch_size=4,
        hidden_size=32,
        mlp_layers=(32,),
        embed_dim=32,
        symlog=False,
        free_nats=0.0,
        kl_dynamics_scale=0.8,
        kl_representation_scale=0.2,
    )
    optimizer = th.optim.Adam(model.parameters(), lr=5e-3)
    observations, previous = linear_system(256, 20, rng)
    is_first = th.zeros(32, 20)
    is_first[:, 0] = 1.0
    for _ in range(120):
        index = rng.integers(0, 256, 32)
        batch = SequenceBatch(
            th.as_tensor(observations[index]),
            th.as_tensor(previous[index]),
            th.zeros(32, 20),
            is_first,
            th.zeros(32, 20),
        )
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    observations, previous = linear_system(64, 20, np.random.default_rng(1))
    context, horizon = 10, 10
    predicted = model.imagine(
        observations[:, :context], previous[:, context:], context_actions=previous[:, 1:context]
    )["obs"].numpy()
    truth = observations[:, context:]
    error = np.linalg.norm(predicted - truth, axis=-1).mean(0)
    hold = np.linalg.norm(observations[:, context - 1 : context] - truth, axis=-1).mean(0)
    assert predicted.shape == (64, horizon, 2)
    assert error[-1] < 0.35, error
    assert error[-1] < hold[-1] / 3, (error, hold)
