"""Argument and action checks shared by every gym_advrl environment.

Every check raises :class:`ValueError` whose message names the offending argument and the
values it accepts, so a user never meets a deep numpy traceback for a simple mistake.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from gymnasium import spaces


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` within ``[low, high]`` (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    _check_bounds(name, value, low, high, "integer")
    return int(value)


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite ``float`` within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and not low_inclusive and value <= low:
        raise ValueError(f"{name} must be > {low}, got {value!r}")
    _check_bounds(name, value, low if low_inclusive else None, high, "number")
    return value


def _check_bounds(name: str, value: float, low: float | None, high: float | None, kind: str) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be a {kind} in [{lo}, {hi}], got {value!r}")


def check_options(options: dict | None, allowed: Iterable[str]) -> dict:
    """Validate the keys of ``reset(options=...)``."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
    allowed = tuple(allowed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed options are {allowed}")
    return options


def discrete_action(action: Any, space: spaces.Discrete) -> int:
    """Validate an action for a :class:`~gymnasium.spaces.Discrete` space and return it as ``int``.

    Accepts Python/numpy integers and 0-d or single-element integer-valued arrays (what SB3 and
    VecEnvs pass). Anything outside the space raises ``ValueError``.
    """
    arr = np.asarray(action)
    if arr.size != 1:
        raise ValueError(f"action must be a single integer in [{space.start}, {space.start + space.n - 1}], got shape {arr.shape}")
    value = arr.reshape(()).item()
    if isinstance(value, float):
        if not np.isfinite(value) or value != int(value):
            raise ValueError(f"action must be an integer in [{space.start}, {space.start + space.n - 1}], got {value!r}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"action must be an integer in [{space.start}, {space.start + space.n - 1}], got {action!r}")
    if not space.start <= value < space.start + space.n:
        raise ValueError(f"action must be an integer in [{space.start}, {space.start + space.n - 1}], got {value}")
    return value


def box_action(action: Any, space: spaces.Box) -> np.ndarray:
    """Validate an action for a :class:`~gymnasium.spaces.Box` space.

    The shape must match (a scalar is accepted for shape ``(1,)``); NaN or inf raise ``ValueError``;
    finite values outside the bounds are clipped to the box, as documented for every env.
    Returns a float64 array of ``space.shape``.
    """
    try:
        arr = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"action must be numeric with shape {space.shape}, got {action!r}") from err
    if arr.shape != space.shape:
        if arr.size == int(np.prod(space.shape)) and arr.ndim <= 1:
            arr = arr.reshape(space.shape)
        else:
            raise ValueError(f"action must have shape {space.shape}, got shape {arr.shape}")
    if arr.size <= _SMALL_ACTION:
        # Small actions (the common case) are checked element-wise in Python: several times
        # faster than numpy's per-call overhead for isfinite/clip on one or two numbers.
        values = arr.ravel().tolist()
        if not all(map(math.isfinite, values)):
            raise ValueError(f"action must be finite (no NaN or inf), got {values}")
        lows, highs = space.low.ravel().tolist(), space.high.ravel().tolist()
        if all(lo <= v <= hi for v, lo, hi in zip(values, lows, highs, strict=True)):
            return arr
        return np.clip(arr, space.low, space.high)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action must be finite (no NaN or inf), got {arr.tolist()}")
    return np.clip(arr, space.low, space.high)


_SMALL_ACTION = 8


def batch_box_action(action: Any, action_dim: int, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    """Clip a batch of actions ``(..., action_dim)`` for vectorized ``reward_fn`` style helpers."""
    arr = np.asarray(action, dtype=np.float64)
    if arr.shape[-1:] != (action_dim,):
        raise ValueError(f"action must have trailing dimension {action_dim}, got shape {arr.shape}")
    return np.clip(arr, low, high)


def check_physics(physics: Any, allowed: Iterable[str], nonnegative: Iterable[str] = ()) -> dict[str, float]:
    """Validate a ``physics`` dict: known keys only, finite values, > 0 (or >= 0 for ``nonnegative``)."""
    allowed = tuple(allowed)
    nonnegative = set(nonnegative)
    if not isinstance(physics, dict):
        raise ValueError(f"physics must be a dict with keys from {allowed}, got {physics!r}")
    unknown = sorted(set(physics) - set(allowed))
    if unknown:
        raise ValueError(f"unknown physics parameter(s) {unknown}; allowed are {allowed}")
    return {
        name: check_float(name, value, 0.0, low_inclusive=name in nonnegative) for name, value in physics.items()
    }
