"""Open-loop prediction strips: what a latent world model expects to see, next to what happens.

:func:`collect_prediction` runs an episode of an image-observation env, gives the world model
(:class:`~sb3_ext.common.world_model.LatentWorldModel`, or an algorithm that holds one, such as
``Dreamer`` or ``LatentMPC``) its first ``context`` observations, and asks it to predict the next
``horizon`` observations open loop under the actions that were really taken
(:meth:`~sb3_ext.common.world_model.LatentWorldModel.imagine`). :func:`strip_image` lays the real
frames on one row and the predictions 1..horizon steps ahead on the row below; :func:`save_prediction_strip`
writes it as a PNG, and as a GIF (real | predicted, one step per frame) with the ``[gif]`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space_channels_first

from sb3_ext.common.validation import check_int
from sb3_ext.common.world_model import LatentWorldModel

__all__ = ["PredictionStrip", "collect_prediction", "save_prediction_strip", "strip_image", "world_model_of"]

#: Pixels between two frames of a strip (white).
GAP = 2


class PredictionStrip(NamedTuple):
    """Real and predicted frames ``(horizon, height, width, 3)`` uint8, step ``k`` = ``k + 1`` steps ahead."""

    real: np.ndarray
    predicted: np.ndarray
    context: np.ndarray  #: the ``context`` frames the model observed first, ``(context, height, width, 3)``


def world_model_of(model: Any) -> LatentWorldModel:
    """The :class:`LatentWorldModel` itself, or the one of an algorithm's policy (``model.policy.world_model``)."""
    if isinstance(model, LatentWorldModel):
        return model
    world_model = getattr(getattr(model, "policy", None), "world_model", None)
    if not isinstance(world_model, LatentWorldModel):
        raise ValueError(
            f"model must be a LatentWorldModel or an algorithm whose policy has one, got {type(model)}"
        )
    return world_model


def _to_model_layout(obs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An env frame ``(H, W, 3)`` in the model's layout (SB3 trains on channel-first ``(3, H, W)``)."""
    if obs.shape == shape:
        return obs
    if obs.ndim == 3 and np.moveaxis(obs, -1, 0).shape == shape:
        return np.moveaxis(obs, -1, 0)
    raise ValueError(f"the env's observations {obs.shape} do not match the model's observation space {shape}")


def _to_picture(frames: np.ndarray, channels_first: bool) -> np.ndarray:
    """Frames in the model's layout -> ``(N, H, W, 3)`` uint8."""
    frames = np.moveaxis(frames, 1, -1) if channels_first else frames
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _model_action(action: Any, action_space: spaces.Space) -> np.ndarray:
    """An env action in the world model's units: Box scaled to ``[-1, 1]`` as SB3's
    ``policy.scale_action`` scales the actions the model is trained on, Discrete as its index."""
    if isinstance(action_space, spaces.Box):
        low, high = action_space.low, action_space.high
        return (2.0 * ((np.asarray(action) - low) / (high - low)) - 1.0).astype(np.float32)
    return np.asarray(action, dtype=np.int64).reshape(1)


def collect_prediction(
    model: Any,
    env: gym.Env,
    horizon: int = 30,
    context: int = 5,
    seed: int = 0,
    deterministic: bool = True,
) -> PredictionStrip:
    """
    Run one episode of ``env`` and predict its frames open loop.

    :param model: a :class:`LatentWorldModel`, or an algorithm with ``policy.world_model``
        (``Dreamer``, ``LatentMPC``); an algorithm also chooses the actions (``predict`` with its
        recurrent state), a bare world model gets uniformly random actions.
    :param env: a Gymnasium env with ``uint8`` image observations of the model's size (e.g. the
        ``AddRenderObservation`` recipe of the pixel pendulum); not a VecEnv.
    :param horizon: steps predicted ahead (>= 1).
    :param context: observations the model filters before predicting (>= 1).
    :param seed: seed of ``env.reset`` and of the random actions.
    :param deterministic: deterministic actions of the algorithm.
    :return: the real and predicted frames (and the context frames), ``(N, H, W, 3)`` uint8.
    """
    horizon = check_int("horizon", horizon, 1)
    context = check_int("context", context, 1)
    world_model = world_model_of(model)
    if not world_model.is_image:
        raise ValueError(
            f"a prediction strip needs a model of image observations, got {world_model.observation_space}"
        )
    shape = tuple(world_model.observation_space.shape)
    # The channel order the world model's encoder reads (SB3's rule).
    channels_first = is_image_space_channels_first(world_model.observation_space)
    acts = hasattr(model, "predict") and not isinstance(model, LatentWorldModel)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, actions, state, episode_start = [_to_model_layout(obs, shape)], [], None, np.ones(1, bool)
    for _ in range(context + horizon - 1):
        if acts:
            action, state = model.predict(
                obs, state=state, episode_start=episode_start, deterministic=deterministic
            )
            episode_start = np.zeros(1, bool)
        else:
            action = env.action_space.sample()
        obs, _, terminated, truncated, _ = env.step(action)
        actions.append(_model_action(action, env.action_space))
        observations.append(_to_model_layout(obs, shape))
        if terminated or truncated:
            break
    if len(observations) < context + horizon:
        raise ValueError(
            f"the episode ended after {len(observations) - 1} steps; context + horizon - 1 = "
            f"{context + horizon - 1} are needed"
        )
    frames = np.stack(observations)
    steps = np.stack(actions)
    prediction = world_model.imagine(
        frames[None, :context],
        steps[None, context - 1 :],
        context_actions=steps[None, : context - 1] if context > 1 else None,
    )
    predicted = prediction["obs"][0].cpu().numpy()
    return PredictionStrip(
        real=_to_picture(frames[context:], channels_first),
        predicted=_to_picture(predicted, channels_first),
        context=_to_picture(frames[:context], channels_first),
    )


def strip_image(strip: PredictionStrip, gap: int = GAP) -> np.ndarray:
    """
    The strip as one ``uint8`` image: real frames on the top row, predictions (1..horizon steps
    ahead, left to right) on the bottom row, ``gap`` white pixels between frames.
    Shape ``(2 h + gap, n w + (n - 1) gap, 3)`` for ``n`` frames of ``h x w``.
    """
    n, height, width = strip.real.shape[:3]
    image = np.full((2 * height + gap, n * width + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for row, frames in enumerate((strip.real, strip.predicted)):
        top = row * (height + gap)
        for k in range(n):
            left = k * (width + gap)
            image[top : top + height, left : left + width] = frames[k]
    return image


def save_prediction_strip(
    strip: PredictionStrip, path: str | Path, gif_path: str | Path | None = None, scale: int = 1
) -> Path:
    """
    Write the strip as a PNG (``scale`` times enlarged, nearest neighbour); with ``gif_path``, also
    a GIF whose frame ``k`` shows the real frame and the prediction ``k + 1`` steps ahead side by
    side (needs imageio: ``pip install "gym-advrl[gif]"``). Returns the PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = check_int("scale", scale, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = strip_image(strip)
    plt.imsave(path, np.repeat(np.repeat(image, scale, axis=0), scale, axis=1))
    if gif_path is not None:
        try:
            import imageio.v2 as imageio
        except ImportError as err:
            raise ImportError('a GIF needs imageio: pip install "gym-advrl[gif]"') from err
        gap = np.full((strip.real.shape[1], GAP, 3), 255, dtype=np.uint8)
        frames = [
            np.repeat(np.repeat(np.concatenate([real, gap, predicted], axis=1), scale, axis=0), scale, axis=1)
            for real, predicted in zip(strip.real, strip.predicted, strict=True)
        ]
        Path(gif_path).parent.mkdir(parents=True, exist_ok=True)
        # imageio's GIF writer takes the frame duration in milliseconds: 0.1 s per step.
        imageio.mimsave(gif_path, frames, duration=100, loop=0)
    return path
