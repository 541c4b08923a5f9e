"""Observation wrappers: Gaussian noise, random image shifts and masked (partially observed) dimensions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.core import ActType

from gym_advrl.utils.validation import check_int, reject_unknown_kwargs
from gym_advrl.wrappers._common import SeededObservationWrapper, env_name


class ObservationNoise(SeededObservationWrapper[ActType]):
    """Adds zero-mean Gaussian noise to every observation (sensor noise, or augmentation).

    Each observation (from ``reset`` and ``step``) becomes ``obs + std * N(0, I)``, clipped to
    the observation space's bounds (and, where those are infinite, to the largest finite value
    of the dtype) so that it stays a valid, finite observation, and cast back to the space's
    dtype. ``std`` is a number or one value per observation dimension (broadcast to the
    observation shape), each in ``[0, 1e6]``; zero leaves a dimension exact. Applies to environments with a
    floating-point ``Box`` observation space; others (``Discrete``, ``uint8`` images, for which
    :class:`RandomShift` is the augmentation) raise ``ValueError``. The noise comes from the
    wrapper's own generator, seeded by ``reset(seed=...)``, so seeded runs are reproducible and
    the wrapped env's dynamics stream is untouched.

    Example:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import gym_advrl
        >>> from gym_advrl.wrappers import ObservationNoise
        >>> clean = gym.make("AdvRL/Pendulum-v0")
        >>> noisy = ObservationNoise(gym.make("AdvRL/Pendulum-v0"), std=[0.0, 0.0, 0.5])
        >>> a, b = clean.reset(seed=1)[0], noisy.reset(seed=1)[0]
        >>> bool(np.array_equal(a[:2], b[:2])), bool(a[2] != b[2])
        (True, True)

    Change logs:
     * v0.1.0 - Initially added
    """

    _rng_salt = 3
    #: Largest noise standard deviation.
    MAX_STD = 1e6

    @reject_unknown_kwargs
    def __init__(self, env: gym.Env[np.ndarray, ActType], std: float | Sequence[float] = 0.1) -> None:
        """Wrap ``env`` so that its observations are noisy.

        Args:
            env: an environment with a floating-point ``Box`` observation space.
            std: noise standard deviation in ``[0, 1e6]``, a number or broadcastable to the observation shape.
        """
        gym.utils.RecordConstructorArgs.__init__(self, std=std)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or not np.issubdtype(space.dtype, np.floating):
            raise ValueError(
                f"ObservationNoise needs a floating-point Box observation space; {env_name(env)} has {space} "
                "(use RandomShift for uint8 images)"
            )
        try:
            std_arr = np.asarray(std)
            if std_arr.dtype.kind not in "iuf":
                raise TypeError
            std_arr = np.broadcast_to(std_arr.astype(np.float64), space.shape).copy()
        except (TypeError, ValueError):
            raise ValueError(
                f"std must be a number or broadcastable to the observation shape {space.shape}, got {std!r}"
            ) from None
        if not np.all(np.isfinite(std_arr)) or np.any(std_arr < 0) or np.any(std_arr > self.MAX_STD):
            raise ValueError(f"std must be finite and in [0, {self.MAX_STD:g}], got {std!r}")
        self.std = std_arr
        largest = float(np.finfo(space.dtype).max)
        self._low = np.maximum(space.low.astype(np.float64), -largest)
        self._high = np.minimum(space.high.astype(np.float64), largest)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation`` plus clipped Gaussian noise."""
        space = self.observation_space
        noisy = observation + self.std * self._seed_rng(None).standard_normal(space.shape)
        return np.clip(noisy, self._low, self._high).astype(space.dtype)


class RandomShift(SeededObservationWrapper[ActType]):
    """Randomly translates image observations by up to ``pad`` pixels (DrQ's augmentation).

    Following DrQ (Kostrikov, Yarats & Fergus, 2021), each image is padded by ``pad`` pixels on
    every side by repeating its border pixels, then a crop of the original size is taken at a
    uniformly random offset in ``[0, 2 pad]`` along each axis. The observation space is
    unchanged. Applies to image ``Box`` spaces of shape ``(H, W)`` or ``(H, W, C)`` (channels
    last, the Gymnasium convention; SB3 transposes for its CNNs), e.g. ``AdvRL/GridWorld-v0``
    and ``AdvRL/FourRooms-v0`` with ``obs_mode="rgb"``; other spaces, and ``pad`` outside
    ``[1, min(H, W) - 1]``, raise ``ValueError``. Offsets come from the wrapper's own generator,
    seeded by ``reset(seed=...)``.

    Example:
        >>> import gymnasium as gym
        >>> import gym_advrl
        >>> from gym_advrl.wrappers import RandomShift
        >>> env = RandomShift(gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), pad=4)
        >>> obs, _ = env.reset(seed=0)
        >>> obs.shape, obs.dtype, env.observation_space == env.env.observation_space
        ((40, 40, 3), dtype('uint8'), True)

    Change logs:
     * v0.1.0 - Initially added
    """

    _rng_salt = 4

    @reject_unknown_kwargs
    def __init__(self, env: gym.Env[np.ndarray, ActType], pad: int = 4) -> None:
        """Wrap ``env`` so that its image observations are randomly shifted.

        Args:
            env: an environment with an image ``Box`` observation space, ``(H, W)`` or ``(H, W, C)``.
            pad: the largest shift in pixels (>= 1 and < min(H, W)).
        """
        gym.utils.RecordConstructorArgs.__init__(self, pad=pad)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) not in (2, 3):
            raise ValueError(
                f"RandomShift needs an image Box observation space of shape (H, W) or (H, W, C); "
                f"{env_name(env)} has {space}"
            )
        self.height, self.width = space.shape[:2]
        self.pad = check_int("pad", pad, 1, min(self.height, self.width) - 1)
        self._pad_width = ((self.pad, self.pad), (self.pad, self.pad)) + ((0, 0),) * (len(space.shape) - 2)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation`` translated by a random offset, borders repeated."""
        padded = np.pad(observation, self._pad_width, mode="edge")
        top, left = self._seed_rng(None).integers(0, 2 * self.pad + 1, size=2)
        return np.ascontiguousarray(padded[top : top + self.height, left : left + self.width])


class MaskObservation(
    gym.ObservationWrapper[np.ndarray, ActType, np.ndarray], gym.utils.RecordConstructorArgs
):
    """Hides observation dimensions to turn an MDP into a POMDP (e.g. drop the velocities).

    Give either the indices to ``drop`` or those to ``keep`` (kept in the given order). The
    observation space becomes the reduced ``Box`` with the kept dimensions' bounds and the same
    dtype. Dropping the velocities of ``AdvRL/Pendulum-v0`` (``drop=[2]``) or
    ``AdvRL/ContinuousCartPole-v0`` (``drop=[1, 3]``) gives the classic partially observed
    control tasks that need memory (a recurrent policy or frame stacking). Applies to 1-D
    ``Box`` observation spaces; others, repeated or out-of-range indices and masks that keep
    nothing raise ``ValueError``.

    Example:
        >>> import gymnasium as gym
        >>> import gym_advrl
        >>> from gym_advrl.wrappers import MaskObservation
        >>> env = MaskObservation(gym.make("AdvRL/ContinuousCartPole-v0"), drop=[1, 3])
        >>> env.observation_space
        Box([-4.8       -0.41887903], [4.8        0.41887903], (2,), float32)
        >>> env.reset(seed=0)[0].shape
        (2,)

    Change logs:
     * v0.1.0 - Initially added
    """

    @reject_unknown_kwargs
    def __init__(
        self,
        env: gym.Env[np.ndarray, ActType],
        drop: Sequence[int] | None = None,
        keep: Sequence[int] | None = None,
    ) -> None:
        """Wrap ``env`` so that only some observation dimensions are visible.

        Args:
            env: an environment with a 1-D ``Box`` observation space.
            drop: indices to hide (negative indices count from the end).
            keep: indices to show, in this order. Give exactly one of ``drop`` and ``keep``.
        """
        gym.utils.RecordConstructorArgs.__init__(self, drop=drop, keep=keep)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(
                f"MaskObservation needs a 1-D Box observation space; {env_name(env)} has {space}"
            )
        if (drop is None) == (keep is None):
            raise ValueError("give exactly one of drop and keep (observation indices)")
        n = space.shape[0]
        name = "drop" if drop is not None else "keep"
        indices = self._check_indices(name, drop if drop is not None else keep, n)
        self.keep = np.array(
            [i for i in range(n) if i not in indices] if drop is not None else indices, dtype=np.intp
        )
        if self.keep.size == 0:
            raise ValueError(f"{name}={indices} would leave no observation dimension; {n} are available")
        self.observation_space = spaces.Box(space.low[self.keep], space.high[self.keep], dtype=space.dtype)

    @staticmethod
    def _check_indices(name: str, indices: Any, n: int) -> list[int]:
        if isinstance(indices, str) or not isinstance(indices, Sequence | np.ndarray):
            raise ValueError(
                f"{name} must be a sequence of observation indices in [-{n}, {n - 1}], got {indices!r}"
            )
        checked = [check_int(f"{name}[{j}]", i, -n, n - 1) % n for j, i in enumerate(indices)]
        if len(set(checked)) != len(checked):
            raise ValueError(f"{name} must not repeat an index, got {list(indices)}")
        return checked

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return the kept dimensions of ``observation``."""
        return observation[self.keep]
