"""Batch data augmentation for replayed observations (DrQ, Kostrikov et al. 2021; Laskin et al. 2020).

Both functions take a batch of *raw* observations as stored in the replay buffer (before SB3's
preprocessing) and draw their randomness from torch's global generator, which SB3 seeds.
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from torch.nn import functional as F

AUGMENTATIONS = ("auto", "shift", "noise", None)


def random_shift(images: th.Tensor, pad: int) -> th.Tensor:
    """
    Random shift: replicate-pad each image by ``pad`` pixels on every side and crop a random window
    of the original size (an independent integer shift in ``[-pad, pad]`` per image and axis).

    :param images: channel-first images, ``(batch, channels, height, width)``, any dtype
    :param pad: padding in pixels (0 returns the images unchanged, as floats)
    :return: shifted images, float32, same shape and value range as the input
    """
    images = images.float()
    if pad == 0:
        return images
    batch, channels, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    shift_rows = th.randint(0, 2 * pad + 1, (batch, 1), device=images.device)
    shift_cols = th.randint(0, 2 * pad + 1, (batch, 1), device=images.device)
    rows = shift_rows + th.arange(height, device=images.device)  # (batch, height)
    cols = shift_cols + th.arange(width, device=images.device)  # (batch, width)
    batch_index = th.arange(batch, device=images.device)[:, None, None, None]
    channel_index = th.arange(channels, device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]


def gaussian_noise(observations: th.Tensor, std: float) -> th.Tensor:
    """
    Additive Gaussian noise ``obs + std * N(0, I)``.

    :param observations: vector observations, ``(batch, ...)``
    :param std: standard deviation of the noise, in observation units
    :return: noisy observations, float32
    """
    observations = observations.float()
    return observations + std * th.randn_like(observations)


def resolve_augmentation(augmentation: str | None, observation_space: spaces.Space) -> str | None:
    """
    Check an ``augmentation`` argument against an observation space and resolve ``"auto"``.

    ``"auto"`` gives ``"shift"`` for image observations (``uint8`` Box, channel-first after SB3's
    ``VecTransposeImage``), ``"noise"`` for other ``Box`` observations and ``None`` for
    ``Discrete``, ``MultiDiscrete`` and ``MultiBinary`` observations: perturbing an index or a
    binary code would describe a different state, not the same state seen differently.

    :param augmentation: ``"auto"``, ``"shift"``, ``"noise"`` or ``None``
    :param observation_space: the (possibly transposed) observation space of the algorithm
    :return: ``"shift"``, ``"noise"`` or ``None``
    :raises ValueError: for an unknown value or one that does not fit the observation space
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
    is_box = isinstance(observation_space, spaces.Box)
    if augmentation == "auto":
        if not is_box:
            return None
        return "shift" if is_image_space(observation_space) else "noise"
    if augmentation == "shift" and not (is_box and len(observation_space.shape) == 3):
        raise ValueError(
            "augmentation='shift' needs image observations (a 3-D Box), "
            f"got {observation_space}; use 'noise' for vector observations or None"
        )
    if augmentation == "noise" and not is_box:
        raise ValueError(
            f"augmentation='noise' needs Box observations, got {observation_space}; "
            "Discrete/MultiDiscrete/MultiBinary observations are never augmented: use None or 'auto'"
        )
    return augmentation
