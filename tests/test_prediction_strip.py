"""Open-loop prediction strips: layout of the picture, frames in the right places, PNG/GIF files, errors."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch as th
from gymnasium.wrappers import AddRenderObservation

import gym_advrl  # noqa: F401
from sb3_ext.common.prediction_strip import (
    GAP,
    collect_prediction,
    save_prediction_strip,
    strip_image,
)
from sb3_ext.common.world_model import LatentWorldModel
from sb3_ext.latent_mpc import LatentMPC

SIZE = 16
SMALL = dict(deter_size=8, stoch_size=4, hidden_size=8, mlp_layers=[8], embed_dim=8, cnn_depth=2)


def pixel_pendulum(size: int = SIZE) -> gym.Env:
    return AddRenderObservation(
        gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=size, height=size)
    )


def untrained_model(env: gym.Env) -> LatentWorldModel:
    th.manual_seed(0)
    return LatentWorldModel(env.observation_space, env.action_space, **SMALL)


def test_strip_holds_the_real_frames_and_the_models_open_loop_predictions() -> None:
    env = pixel_pendulum()
    model = untrained_model(env)
    strip = collect_prediction(model, env, horizon=6, context=3, seed=4)
    assert strip.real.shape == strip.predicted.shape == (6, SIZE, SIZE, 3)
    assert strip.context.shape == (3, SIZE, SIZE, 3)
    assert strip.real.dtype == strip.predicted.dtype == np.uint8

    # The same episode, replayed independently: seeded reset, then the seeded random actions.
    replay = pixel_pendulum()
    replay.action_space.seed(4)
    frames, actions = [replay.reset(seed=4)[0]], []
    for _ in range(3 + 6 - 1):
        action = replay.action_space.sample()
        actions.append(action / 2.0)  # the model's units: the torque scaled from [-2, 2] to [-1, 1]
        frames.append(replay.step(action)[0])
    np.testing.assert_array_equal(strip.context, np.stack(frames[:3]))
    np.testing.assert_array_equal(strip.real, np.stack(frames[3:]))
    actions = np.stack(actions).astype(np.float32)
    expected = model.imagine(np.stack(frames[:3])[None], actions[None, 2:], context_actions=actions[None, :2])
    np.testing.assert_array_equal(
        strip.predicted, np.clip(np.rint(expected["obs"][0].numpy()), 0, 255).astype(np.uint8)
    )


def test_picture_layout_real_row_above_predicted_row() -> None:
    env = pixel_pendulum()
    strip = collect_prediction(untrained_model(env), env, horizon=5, context=2, seed=0)
    image = strip_image(strip)
    assert image.shape == (2 * SIZE + GAP, 5 * SIZE + 4 * GAP, 3) and image.dtype == np.uint8
    for k in range(5):
        left = k * (SIZE + GAP)
        np.testing.assert_array_equal(image[:SIZE, left : left + SIZE], strip.real[k])
        np.testing.assert_array_equal(image[SIZE + GAP :, left : left + SIZE], strip.predicted[k])
        if k < 4:  # white columns between frames
            assert (image[:, left + SIZE : left + SIZE + GAP] == 255).all()
    assert (image[SIZE : SIZE + GAP] == 255).all()


def test_png_and_gif_files(tmp_path: Path) -> None:
    imageio = pytest.importorskip("imageio.v2")
    env = pixel_pendulum()
    strip = collect_prediction(untrained_model(env), env, horizon=4, context=2, seed=1)
    png = save_prediction_strip(strip, tmp_path / "strip.png", gif_path=tmp_path / "strip.gif", scale=2)
    picture = plt.imread(png)
    assert picture.shape[:2] == (2 * (2 * SIZE + GAP), 2 * (4 * SIZE + 3 * GAP))
    np.testing.assert_array_equal(
        np.rint(picture[..., :3] * 255).astype(np.uint8)[::2, ::2], strip_image(strip)
    )
    gif = imageio.mimread(tmp_path / "strip.gif")
    assert len(gif) == 4
    assert gif[0].shape[:2] == (2 * SIZE, 2 * (2 * SIZE + GAP))


def test_an_algorithm_acts_and_its_world_model_predicts() -> None:
    """With LatentMPC (channel-first observations inside SB3) the strip uses its actions and model."""
    env = pixel_pendulum()
    algo = LatentMPC(
        "CnnPolicy",
        pixel_pendulum(),
        learning_starts=10,
        horizon=2,
        population_size=8,
        n_elites=2,
        n_iterations=1,
        buffer_size=100,
        seed=0,
        device="cpu",
        policy_kwargs=dict(world_model_kwargs=SMALL),
    )
    assert algo.policy.world_model.observation_space.shape == (3, SIZE, SIZE)
    strip = collect_prediction(algo, env, horizon=3, context=2, seed=0)
    assert strip.real.shape == strip.predicted.shape == (3, SIZE, SIZE, 3)


def test_bad_input_raises_value_error() -> None:
    env = pixel_pendulum()
    model = untrained_model(env)
    with pytest.raises(ValueError, match="horizon"):
        collect_prediction(model, env, horizon=0)
    with pytest.raises(ValueError, match="context"):
        collect_prediction(model, env, context=0)
    with pytest.raises(ValueError, match="episode ended"):
        collect_prediction(model, pixel_pendulum(), horizon=250)
    states = gym.make("AdvRL/Pendulum-v0")
    with pytest.raises(ValueError, match="image observations"):
        collect_prediction(LatentWorldModel(states.observation_space, states.action_space, **SMALL), states)
    with pytest.raises(ValueError, match="observation"):
        collect_prediction(model, pixel_pendulum(32))
    with pytest.raises(ValueError, match="LatentWorldModel"):
        collect_prediction(object(), env)
