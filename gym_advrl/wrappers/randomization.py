"""Domain randomization: new physical parameters for every episode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType, ObsType

from gym_advrl.utils.validation import check_choice, check_float, options_dict, reject_unknown_kwargs
from gym_advrl.wrappers._common import SeededWrapperRNG, env_name, probe_reset_options

DISTRIBUTIONS = ("uniform", "log-uniform")


class DomainRandomization(
    gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs, SeededWrapperRNG
):
    """Samples the physical parameters of the wrapped environment anew at every ``reset``.

    Domain randomization (Tobin et al., 2017; Peng et al., 2018) trains a policy on a family of
    dynamics so that it keeps working when the real parameters differ from the nominal ones.
    At each ``reset`` this wrapper draws one value per randomized parameter and passes them to
    the environment as ``reset(options={"physics": {...}})``; parameters that are not
    randomized keep the env's constructor values. Applies to every environment that declares
    ``PHYSICS_KEYS`` and accepts the ``physics`` reset option: ``AdvRL/Pendulum-v0``
    (``g, m, l, damping, max_torque``) and ``AdvRL/ContinuousCartPole-v0`` (``gravity,
    masscart, masspole, length, force_mag``).

    Each entry of ``ranges`` is either a pair ``(low, high)``, sampled uniformly (or
    log-uniformly with ``distribution="log-uniform"``, which suits scale parameters spanning
    factors), or a single number that fixes the parameter. Ranges are checked against the
    environment when the wrapper is built: unknown names, ``low > high``, NaN/inf or values
    outside the environment's documented range (its ``PHYSICS_RANGES``, e.g. Pendulum's
    ``m`` in ``[0.001, 1000]``) raise ``ValueError``. Since each range is an interval, checking
    its two ends checks every value that can be drawn.

    Physics given explicitly in ``reset(options={"physics": {...}})`` override the sampled
    values for that episode, which is how a randomized agent is evaluated at chosen parameters.

    ``info["physics"]`` (every parameter in force) and ``info["randomized_physics"]`` (the
    randomized ones only) are reported by ``reset`` and by every ``step``, so they are visible
    through SB3 VecEnvs; :class:`sb3_ext.WrapperInfoCallback` logs the latter to TensorBoard.
    Draws come from the wrapper's own generator, seeded by ``reset(seed=...)``.

    Example:
        >>> import gymnasium as gym
        >>> import gym_advrl
        >>> from gym_advrl.wrappers import DomainRandomization
        >>> env = DomainRandomization(gym.make("AdvRL/Pendulum-v0"), ranges={"m": (0.5, 2.0), "l": (0.5, 1.5)})
        >>> obs, info = env.reset(seed=0)
        >>> sorted(info["randomized_physics"])
        ['l', 'm']
        >>> 0.5 <= info["physics"]["m"] <= 2.0 and info["physics"]["g"] == 10.0
        True
        >>> _, info = env.reset(options={"physics": {"m": 1.0, "l": 1.0}})  # evaluate at nominal physics
        >>> info["randomized_physics"]
        {'m': 1.0, 'l': 1.0}

    Change logs:
     * v0.1.0 - Initially added
    """

    _rng_salt = 1

    @reject_unknown_kwargs
    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        ranges: Mapping[str, float | tuple[float, float]],
        distribution: str = "uniform",
    ) -> None:
        """Wrap ``env`` so that each episode runs with freshly sampled physics.

        Args:
            env: an environment with ``PHYSICS_KEYS`` that accepts ``reset(options={"physics": ...})``.
            ranges: parameter name -> ``(low, high)`` to sample from, or a number to fix it.
            distribution: ``"uniform"`` or ``"log-uniform"`` (needs ``low > 0``).
        """
        gym.utils.RecordConstructorArgs.__init__(self, ranges=ranges, distribution=distribution)
        gym.Wrapper.__init__(self, env)
        keys = getattr(env.unwrapped, "PHYSICS_KEYS", None)
        if not keys:
            raise ValueError(
                f"DomainRandomization needs an environment with randomizable physics (a PHYSICS_KEYS attribute "
                f"and reset(options={{'physics': ...}})), such as AdvRL/Pendulum-v0 or AdvRL/ContinuousCartPole-v0; "
                f"{env_name(env)} has none"
            )
        self.distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
        self.ranges = self._check_ranges(ranges, tuple(keys))
        self._names = tuple(self.ranges)
        self._low = np.array([self.ranges[k][0] for k in self._names], dtype=np.float64)
        self._high = np.array([self.ranges[k][1] for k in self._names], dtype=np.float64)
        if self.distribution == "log-uniform" and np.any(self._low <= 0.0):
            raise ValueError(
                f"ranges: distribution='log-uniform' needs low > 0 for every parameter, got {self.ranges}"
            )
        probe_reset_options(
            env,
            [
                {"physics": dict(zip(self._names, self._low.tolist(), strict=True))},
                {"physics": dict(zip(self._names, self._high.tolist(), strict=True))},
            ],
            "ranges",
        )
        self.physics: dict[str, float] = {}
        self.randomized_physics: dict[str, float] = {}

    @staticmethod
    def _check_ranges(ranges: Any, keys: tuple[str, ...]) -> dict[str, tuple[float, float]]:
        if not isinstance(ranges, Mapping) or not ranges:
            raise ValueError(
                f"ranges must be a non-empty dict mapping parameters from {keys} to (low, high), got {ranges!r}"
            )
        checked = {}
        for name, bounds in ranges.items():
            if name not in keys:
                raise ValueError(f"ranges: unknown physics parameter {name!r}; allowed are {keys}")
            if isinstance(bounds, tuple | list | np.ndarray):
                if len(bounds) != 2:
                    raise ValueError(
                        f"ranges[{name!r}] must be a (low, high) pair or a number, got {bounds!r}"
                    )
                low = check_float(f"ranges[{name!r}] low", bounds[0])
                high = check_float(f"ranges[{name!r}] high", bounds[1])
                if low > high:
                    raise ValueError(f"ranges[{name!r}] must have low <= high, got ({low}, {high})")
            else:
                low = high = check_float(f"ranges[{name!r}]", bounds)
            checked[name] = (low, high)
        return checked

    def sample_physics(self) -> dict[str, float]:
        """Draw one value per randomized parameter from the wrapper's generator."""
        rng = self._seed_rng(None)
        if self.distribution == "uniform":
            values = rng.uniform(self._low, self._high)
        else:
            values = np.exp(rng.uniform(np.log(self._low), np.log(self._high)))
        # exp(log(x)) may round just outside [low, high], where the env would reject the value.
        values = np.clip(values, self._low, self._high)
        return dict(zip(self._names, values.tolist(), strict=True))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Sample physics, reset the env with them and report them in ``info``."""
        self._seed_rng(seed)
        options = options_dict(options)
        requested = options.get("physics") or {}
        if not isinstance(requested, Mapping):
            raise ValueError(f"options['physics'] must be a dict of physics parameters, got {requested!r}")
        physics = {**self.sample_physics(), **requested}
        options["physics"] = physics
        obs, info = self.env.reset(seed=seed, options=options)
        self.physics = dict(info.get("physics", physics))
        self.randomized_physics = {name: float(physics[name]) for name in self._names}
        return obs, self._add_info(info)

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; ``info`` carries the episode's physics."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._add_info(info)

    def _add_info(self, info: dict[str, Any]) -> dict[str, Any]:
        info["physics"] = dict(self.physics)
        info["randomized_physics"] = dict(self.randomized_physics)
        return info
