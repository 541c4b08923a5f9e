"""LatentWorldModel: the loss equals its terms computed independently, open-loop prediction,
encoders chosen from the observation space, units of the heads, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from torch.nn import functional as F

from sb3_ext.common.encoders import CnnDecoder, CnnEncoder, MlpEncoder, symexp, symlog
from sb3_ext.common.sequence_buffer import SequenceBatch
from sb3_ext.common.world_model import LatentWorldModel

VECTOR = spaces.Box(-10, 10, (3,), np.float32)
BOX_ACTION = spaces.Box(-1, 1, (2,), np.float32)
SMALL = dict(deter_size=8, stoch_size=3, classes=4, hidden_size=8, mlp_layers=(8,), embed_dim=8, cnn_depth=2)


def vector_batch(batch: int = 3, length: int = 5, seed: int = 0) -> SequenceBatch:
    g = th.Generator().manual_seed(seed)
    is_first = th.zeros(batch, length)
    is_first[:, 0] = 1.0
    is_first[1, 3] = 1.0  # an episode boundary inside a window
    is_terminal = th.zeros(batch, length)
    is_terminal[1, 2] = 1.0
    return SequenceBatch(
        observations=3 * th.randn(batch, length, 3, generator=g),
        actions=th.rand(batch, length, 2, generator=g) * 2 - 1,
        rewards=th.randn(batch, length, generator=g) * 4,
        is_first=is_first,
        is_terminal=is_terminal,
    )


def independent_loss(
    model: LatentWorldModel, batch: SequenceBatch, generator: th.Generator
) -> dict[str, float]:
    """The loss of the module docstring written out step by step for Gaussian latents."""
    rssm = model.rssm
    n, length = batch.rewards.shape
    deter = th.zeros(n, rssm.deter_size)
    stoch = th.zeros(n, rssm.stoch_size)
    embed = model.encoder(batch.observations)
    recon, reward, cont, kl_values, kl_losses = [], [], [], [], []
    for t in range(length):
        keep = 1.0 - batch.is_first[:, t : t + 1]
        deter, stoch, action = deter * keep, stoch * keep, batch.actions[:, t] * keep
        deter = rssm.gru(rssm.img_in(th.cat([stoch, action], -1)), deter)
        prior_mean, prior_raw = rssm.prior_net(deter).chunk(2, -1)
        prior_std = F.softplus(prior_raw) + 0.1
        th.randn(prior_mean.shape, generator=generator)  # the prior's sample (unused by the loss)
        post_mean, post_raw = rssm.post_net(th.cat([deter, embed[:, t]], -1)).chunk(2, -1)
        post_std = F.softplus(post_raw) + 0.1
        stoch = post_mean + post_std * th.randn(post_mean.shape, generator=generator)
        features = th.cat([deter, stoch], -1)
        recon.append(((model.decoder.net(features) - symlog(batch.observations[:, t])) ** 2).sum(-1))
        reward.append((model.reward_head(features)[:, 0] - symlog(batch.rewards[:, t])) ** 2)
        p = th.sigmoid(model.continuation_head(features)[:, 0])
        y = 1.0 - batch.is_terminal[:, t]
        cont.append(-(y * th.log(p) + (1 - y) * th.log(1 - p)))
        kl = (
            th.log(prior_std / post_std)
            + (post_std**2 + (post_mean - prior_mean) ** 2) / (2 * prior_std**2)
            - 0.5
        ).sum(-1)
        kl_values.append(kl)
        kl_losses.append(0.5 * th.clamp(kl, min=1.0) + 0.1 * th.clamp(kl, min=1.0))
    terms = {
        "reconstruction_loss": th.stack(recon).mean(),
        "reward_loss": th.stack(reward).mean(),
        "continuation_loss": th.stack(cont).mean(),
        "kl_loss": th.stack(kl_losses).mean(),
        "kl": th.stack(kl_values).mean(),
    }
    total = (
        2.0 * th.stack(recon) + 0.5 * th.stack(reward) + 3.0 * th.stack(cont) + th.stack(kl_losses)
    ).mean()
    return {"loss": total.item(), **{k: v.item() for k, v in terms.items()}}


def test_loss_equals_its_terms_computed_independently() -> None:
    th.manual_seed(0)
    model = LatentWorldModel(
        VECTOR,
        BOX_ACTION,
        latent="gaussian",
        symlog=True,
        reconstruction_scale=2.0,
        reward_scale=0.5,
        continuation_scale=3.0,
        **SMALL,
    )
    batch = vector_batch()
    total, terms = model.loss(batch, generator=th.Generator().manual_seed(5))
    with th.no_grad():
        expected = independent_loss(model, batch, th.Generator().manual_seed(5))
    assert total.item() == pytest.approx(expected["loss"], rel=1e-5)
    for name, value in terms.items():
        assert value.item() == pytest.approx(expected[name], rel=1e-5, abs=1e-7), name
    # One Adam step on the loss lowers it on the same batch and the same noise.
    optimizer = th.optim.Adam(model.parameters(), lr=1e-2)
    optimizer.zero_grad()
    total.backward()
    assert all(p.grad is not None for p in model.parameters())
    optimizer.step()
    after, _ = model.loss(batch, generator=th.Generator().manual_seed(5))
    assert after.item() < total.item()


@pytest.mark.parametrize("latent", ["gaussian", "categorical"])
def test_imagine_is_filtering_then_the_prior_open_loop(latent: str) -> None:
    th.manual_seed(1)
    model = LatentWorldModel(VECTOR, spaces.Discrete(3), latent=latent, **SMALL)
    g = th.Generator().manual_seed(2)
    context_obs = th.randn(2, 4, 3, generator=g)
    context_actions = th.tensor([[0, 2, 1], [1, 1, 0]])
    actions = th.tensor([[2, 0], [0, 1]])
    out = model.imagine(context_obs, actions, context_actions=context_actions)
    assert out["obs"].shape == (2, 2, 3) and out["reward"].shape == out["continuation"].shape == (2, 2)
    with th.no_grad():
        state = model.initial_state(2)
        previous = th.zeros(2, dtype=th.long)
        for t in range(4):
            state, _ = model.observe_step(
                state, previous, context_obs[:, t], th.full((2,), float(t == 0)), sample=False
            )
            previous = context_actions[:, t] if t < 3 else None
        for h in range(2):
            state = model.imagine_step(state, actions[:, h], sample=False)
            features = model.features(state)
            th.testing.assert_close(out["features"][:, h], features)
            th.testing.assert_close(out["obs"][:, h], symexp(model.decoder(features)))
            th.testing.assert_close(out["reward"][:, h], symexp(model.reward_head(features)[:, 0]))
            assert ((out["continuation"] > 0) & (out["continuation"] < 1)).all()


def test_imagine_needs_the_context_actions() -> None:
    model = LatentWorldModel(VECTOR, BOX_ACTION, **SMALL)
    with pytest.raises(ValueError, match="context_actions"):
        model.imagine(np.zeros((1, 3, 3), np.float32), np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="context_obs"):
        model.imagine(np.zeros((3, 3), np.float32), np.zeros((1, 2, 2), np.float32))
    out = model.imagine(np.zeros((1, 1, 3), np.float32), np.zeros((1, 2, 2), np.float32))
    assert out["obs"].shape == (1, 2, 3)


@pytest.mark.parametrize("shape", [(16, 16, 3), (3, 16, 16), (8, 16, 1)])
def test_images_get_a_cnn_and_decode_to_pixel_units(shape: tuple[int, ...]) -> None:
    space = spaces.Box(0, 255, shape, np.uint8)
    model = LatentWorldModel(space, spaces.Discrete(2), **SMALL)
    assert isinstance(model.encoder, CnnEncoder) and isinstance(model.decoder, CnnDecoder)
    obs = th.as_tensor(np.stack([space.sample() for _ in range(6)])).reshape(2, 3, *shape)
    assert model.embed(obs).shape == (2, 3, model.encoder.embed_dim)
    out = model.imagine(obs[:, :1], th.zeros(2, 4, dtype=th.long))
    assert out["obs"].shape == (2, 4, *shape)
    assert out["obs"].min() >= 0 and out["obs"].max() <= 255
    # The reconstruction target is SB3's preprocess_obs image in [0, 1].
    th.testing.assert_close(model.observation_target(obs), obs.float() / 255.0)
    batch = SequenceBatch(
        obs, th.zeros(2, 3, 1), th.zeros(2, 3), th.tensor([[1.0, 0, 0]] * 2), th.zeros(2, 3)
    )
    total, terms = model.loss(batch)
    assert math.isfinite(total.item()) and terms["reconstruction_loss"] > 0


def test_64x64_images_halve_four_times() -> None:
    model = LatentWorldModel(spaces.Box(0, 255, (64, 64, 3), np.uint8), BOX_ACTION, **SMALL)
    assert model.encoder.n_layers == 4 and model.encoder.embed_dim == 2 * 8 * 4 * 4


def test_vectors_get_an_mlp_and_symlog_is_optional() -> None:
    plain = LatentWorldModel(VECTOR, BOX_ACTION, symlog=False, **SMALL)
    assert isinstance(plain.encoder, MlpEncoder) and not plain.encoder.symlog_inputs
    obs = th.tensor([[-20.0, 0.5, 3.0]])
    th.testing.assert_close(plain.observation_target(obs), obs)
    squashed = LatentWorldModel(VECTOR, BOX_ACTION, symlog=True, **SMALL)
    th.testing.assert_close(squashed.observation_target(obs), th.sign(obs) * th.log(1 + obs.abs()))
    th.testing.assert_close(symexp(symlog(obs)), obs)


def test_discrete_actions_are_one_hot() -> None:
    model = LatentWorldModel(VECTOR, spaces.Discrete(3), **SMALL)
    th.testing.assert_close(model.action_vector(np.array([[2], [0]])), th.tensor([[0.0, 0, 1], [1, 0, 0]]))
    th.testing.assert_close(model.action_vector(np.array([1, 2])), th.tensor([[0.0, 1, 0], [0, 0, 1]]))


@pytest.mark.parametrize(
    "observation_space, action_space, name",
    [
        (spaces.Discrete(4), BOX_ACTION, "observation_space"),
        (spaces.Dict({"x": VECTOR}), BOX_ACTION, "observation_space"),
        (spaces.Box(0, 255, (20, 20, 3), np.uint8), BOX_ACTION, "observation_space"),
        (spaces.Box(0, 255, (6, 6, 3), np.uint8), BOX_ACTION, "observation_space"),
        (spaces.Box(0, 255, (16, 26, 3), np.uint8), BOX_ACTION, "observation_space"),
        (VECTOR, spaces.MultiDiscrete([2, 2]), "action_space"),
        (VECTOR, spaces.Box(-1, 1, (2, 2), np.float32), "action_space"),
    ],
)
def test_unsupported_spaces_are_value_errors_naming_them(observation_space, action_space, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LatentWorldModel(observation_space, action_space, **SMALL)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(latent="beta"), "latent"),
        (dict(free_nats=-1.0), "free_nats"),
        (dict(symlog="yes"), "symlog"),
        (dict(kl_dynamics_scale=-0.5), "kl_dynamics_scale"),
        (dict(mlp_layers=(0,)), "mlp_layers"),
    ],
)
def test_bad_model_arguments_are_value_errors_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LatentWorldModel(VECTOR, BOX_ACTION, **{**SMALL, **kwargs})


def test_cnn_world_model_learns_what_moves_in_the_images() -> None:
    """From 8x8 frames of a moving point (random actions), the model must come to reconstruct
    the frames far better than their average frame, and predict the reward ``-|x|`` from them:
    the encoder, the posterior, the decoder and the reward head all carry the point's position."""
    from sb3_ext.common.sequence_buffer import SequenceReplayBuffer
    from tests.image_envs import PointImageEnv

    th.manual_seed(0)
    env = PointImageEnv(size=8)
    model = LatentWorldModel(
        env.observation_space,
        env.action_space,
        deter_size=32,
        stoch_size=8,
        classes=8,
        hidden_size=32,
        mlp_layers=(32,),
        embed_dim=32,
        cnn_depth=8,
    )
    buffer = SequenceReplayBuffer(2_000, env.observation_space, env.action_space, device="cpu")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for step in range(1, 1_501):
        action = rng.uniform(-1, 1, (1,)).astype(np.float32)
        next_obs, reward, *_ = env.step(action)
        end = step % 30 == 0
        buffer.add(
            obs[None],
            next_obs[None],
            action[None],
            np.array([reward]),
            np.array([end]),
            [{"TimeLimit.truncated": end}],
        )
        obs = next_obs
        if end:
            obs, _ = env.reset()
            buffer.start_new_episodes()
    optimizer = th.optim.Adam(model.parameters(), lr=1e-3)
    np.random.seed(1)  # noqa: NPY002  (the buffer samples from numpy's global generator)
    held_out = buffer.sample(16, 16)
    for _ in range(250):
        loss, _, _ = model.compute_loss(buffer.sample(8, 8))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mean_frame = th.as_tensor(buffer.observations[: buffer.size(), 0].mean(0)) / 255.0
    with th.no_grad():
        _, terms, posteriors = model.compute_loss(held_out)
        mean_frame_error = (held_out.observations / 255.0 - mean_frame).pow(2).flatten(2).sum(-1).mean()
        predicted = model.reward(model.features(posteriors))
        r2 = 1 - (predicted - held_out.rewards).pow(2).mean() / held_out.rewards.var()
    assert terms["reconstruction_loss"] < 0.5 * mean_frame_error
    assert r2 > 0.6
