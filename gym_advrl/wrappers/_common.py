"""Machinery shared by the gym_advrl wrappers: seeding and early validation of reset options."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType


class SeededWrapperRNG:
    """Mixin giving a wrapper its own generator, seeded by the ``seed`` passed to ``reset``.

    The wrapper's draws (sampled physics, noise, shifts, goals) come from ``self._rng``, a
    :class:`numpy.random.Generator` that ``reset(seed=s)`` re-creates from ``s`` (never a global
    RNG). It is derived from ``SeedSequence(s, spawn_key=(salt,))``, so it is reproducible and yet
    independent of the wrapped env's own ``np_random`` stream: wrapping an env does not change
    its initial states or its dynamics noise, which keeps comparisons with and without the
    wrapper paired. An env that is never seeded draws fresh OS entropy, as Gymnasium does.
    """

    #: Distinguishes the wrappers' streams for the same seed; set by each subclass.
    _rng_salt: int = 0
    _rng: np.random.Generator | None = None

    def _seed_rng(self, seed: int | None) -> np.random.Generator:
        if seed is not None:
            sequence = np.random.SeedSequence(int(seed), spawn_key=(self._rng_salt,))
            self._rng = np.random.Generator(np.random.PCG64(sequence))
        elif self._rng is None:
            self._rng = np.random.default_rng()
        return self._rng


class SeededObservationWrapper(
    gym.ObservationWrapper[np.ndarray, ActType, np.ndarray], gym.utils.RecordConstructorArgs, SeededWrapperRNG
):
    """An observation wrapper whose random transformation (noise, shifts) is seeded by ``reset``."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the env (seeding the wrapper's generator when ``seed`` is given) and return the
        transformed observation."""
        self._seed_rng(seed)
        return super().reset(seed=seed, options=options)


def probe_reset_options(env: gym.Env, options_list: Iterable[dict[str, Any]], argument: str) -> None:
    """Fail early: reset a copy of ``env`` with each options dict and re-raise its ``ValueError``.

    The env's own checks decide what is valid (known option names, physics bounds, free goal
    cells), so a wrapper never duplicates them, and a bad argument is reported when the wrapper
    is built instead of at some later reset inside a training loop. The copy keeps the wrapped
    env's state and RNG untouched. An env that cannot be deep-copied (an open window, say) is not
    probed; its errors then surface at the first reset.
    """
    try:
        probe = copy.deepcopy(env)
    except Exception:  # noqa: BLE001 - any copy failure only means "cannot probe"
        return
    try:
        for options in options_list:
            try:
                probe.reset(options=options)
            except ValueError as err:
                raise ValueError(
                    f"{argument}: the environment rejects reset(options={options!r}): {err}"
                ) from None
    finally:
        probe.close()


def env_name(env: gym.Env) -> str:
    """The registered id of ``env`` if it has one, else its class name (for error messages)."""
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__
