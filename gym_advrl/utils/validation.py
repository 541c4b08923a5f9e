"""Argument and action checks shared by every gym_advrl environment, wrapper and MARL env.

Every check raises :class:`ValueError` whose message names the offending argument and the
values it accepts, so a user never meets a deep numpy traceback (or an ``OverflowError``, a
``TypeError`` or a silent NaN) for a simple mistake.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from gymnasium import spaces

_Init = TypeVar("_Init", bound=Callable[..., None])


def reject_unknown_kwargs(init: _Init) -> _Init:
    """Decorate an ``__init__`` so that an unknown keyword argument raises ``ValueError``.

    Python's own ``TypeError`` ("unexpected keyword argument") names the argument but not the
    accepted ones; this message lists them, as every other argument check of the package does.
    ``inspect.signature`` of the class still shows the real signature (``functools.wraps``).
    """
    parameters = inspect.signature(init).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted = tuple(
        name
        for name, p in parameters.items()
        if name != "self"
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not accepts_any:
            unknown = [name for name in kwargs if name not in accepted]
            if unknown:
                raise ValueError(
                    f"{type(self).__name__} got unknown argument(s) {unknown}; accepted arguments are {accepted}"
                )
        init(self, *args, **kwargs)

    return checked_init  # type: ignore[return-value]


@dataclass(frozen=True)
class Interval:
    """A documented range of valid values: ``[low, high]``, ``(low, high]`` with ``low_open``.

    ``None`` for a bound means unbounded on that side (NaN and inf are always rejected).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open else '['}{low}, {high}{')' if self.high is None else ']'}"

    def check(self, name: str, value: Any) -> float:
        """Return ``value`` as a finite ``float`` inside the interval, else raise ``ValueError``."""
        return check_float(name, value, self.low, self.high, low_inclusive=not self.low_open)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` listing them."""
    allowed = tuple(allowed)
    try:
        known = value in allowed
    except (TypeError, ValueError):  # e.g. an array, whose truth value is ambiguous
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` within ``[low, high]`` (either bound optional)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    _check_bounds(name, value, low, high, "integer", True)
    return int(value)


def as_integer(name: str, value: Any) -> int:
    """Return an integer or an integer-valued float (``3.0``) as ``int``; anything else raises.

    NaN, inf and values too large for a float raise ``ValueError``, never ``OverflowError``.
    """
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def cell_pair(name: str, cell: Any) -> tuple[int, int]:
    """A ``(row, col)`` pair of integers (integer-valued floats accepted), else ``ValueError`` naming ``name``."""
    message = f"{name} must be a (row, col) pair of integers, got {cell!r}"
    if isinstance(cell, np.ndarray):
        cell = cell.tolist() if cell.ndim == 1 else None
    if isinstance(cell, str | bytes) or not isinstance(cell, Sequence) or len(cell) != 2:
        raise ValueError(message)
    try:
        return as_integer(name, cell[0]), as_integer(name, cell[1])
    except ValueError:
        raise ValueError(message) from None


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite ``float`` within the given bounds."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # a Python int beyond the float range
        raise ValueError(f"{name} must be finite, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    _check_bounds(name, value, low, high, "number", low_inclusive)
    return value


def _check_bounds(
    name: str, value: float, low: float | None, high: float | None, kind: str, low_inclusive: bool
) -> None:
    too_low = low is not None and (value < low or (not low_inclusive and value == low))
    if too_low or (high is not None and value > high):
        interval = Interval(low, high, low_open=not low_inclusive)
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValueError(f"{name} must be {article} {kind} in {interval}, got {value!r}")


def check_options(options: dict | None, allowed: Iterable[str]) -> dict:
    """Validate the keys of ``reset(options=...)``."""
    if options is None:
        return {}
    allowed = tuple(allowed)
    if not isinstance(options, dict):
        raise ValueError(
            f"options must be a dict (with keys from {allowed}) or None, got {type(options).__name__}"
        )
    unknown = sorted(map(str, set(options) - set(allowed)))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed options are {allowed}")
    return options


def options_dict(options: Any) -> dict:
    """A copy of ``reset(options=...)`` as a dict (``None`` gives ``{}``); a wrapper adds its own keys to it.

    Only the type is checked here: the keys are the wrapped env's to judge.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
    return dict(options)


def check_physics(physics: Any, ranges: Mapping[str, Interval]) -> dict[str, float]:
    """Validate a ``physics`` dict: known keys only, each value finite and inside its range."""
    allowed = tuple(ranges)
    if not isinstance(physics, Mapping):
        raise ValueError(f"physics must be a dict with keys from {allowed}, got {physics!r}")
    unknown = sorted(map(str, set(physics) - set(allowed)))
    if unknown:
        raise ValueError(f"unknown physics parameter(s) {unknown}; allowed are {allowed}")
    return {name: ranges[name].check(name, value) for name, value in physics.items()}


def episode_physics(
    defaults: Mapping[str, float], options: Mapping[str, Any], ranges: Mapping[str, Interval]
) -> dict[str, float]:
    """The physics of a new episode: the constructor's ``defaults``, overridden by ``options["physics"]``."""
    physics = dict(defaults)
    if "physics" in options:
        physics.update(check_physics(options["physics"], ranges))
    return physics


def as_batch(name: str, value: Any, size: int) -> np.ndarray:
    """``value`` as a float64 array of shape ``(..., size)``, any leading batch dims (``reward_fn`` inputs)."""
    array = np.asarray(value, dtype=np.float64)
    if array.shape[-1:] != (size,):
        raise ValueError(f"{name} must have trailing dim {size}, got shape {array.shape}")
    return array


def discrete_action(action: Any, space: spaces.Discrete) -> int:
    """Validate an action for a :class:`~gymnasium.spaces.Discrete` space and return it as ``int``.

    Accepts Python/numpy integers, integer-valued floats and 0-d or single-element arrays of
    them (what SB3 and VecEnvs pass). Booleans, strings, complex numbers and anything outside
    the space raise ``ValueError``.
    """
    if type(action) is int:  # the common case, without numpy's per-call overhead
        value = action
    else:
        allowed = f"[{space.start}, {space.start + space.n - 1}]"
        try:
            arr = np.asarray(action)
        except (TypeError, ValueError):
            raise ValueError(f"action must be a single integer in {allowed}, got {action!r}") from None
        if arr.size != 1:
            raise ValueError(f"action must be a single integer in {allowed}, got shape {arr.shape}")
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"action must be an integer in {allowed}, got {action!r}")
        value = (
            as_integer("action", arr.reshape(()).item()) if arr.dtype.kind == "f" else int(arr.reshape(()))
        )
    if not space.start <= value < space.start + space.n:
        raise ValueError(
            f"action must be an integer in [{space.start}, {space.start + space.n - 1}], got {value}"
        )
    return value


def box_action(action: Any, space: spaces.Box) -> np.ndarray:
    """Validate an action for a :class:`~gymnasium.spaces.Box` space.

    The action must hold real numbers (integers or floats: strings, booleans and complex numbers
    raise ``ValueError``, never a silent conversion) and match the shape (a scalar is accepted for
    shape ``(1,)``); NaN or inf raise ``ValueError``; finite values outside the bounds are
    clipped to the box, as documented for every env. Returns a float64 array of ``space.shape``.
    """
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError):  # ragged nested sequences
        raise ValueError(f"action must be numeric with shape {space.shape}, got {action!r}") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(
            f"action must be numeric (real: int or float) with shape {space.shape}, got {action!r}"
        )
    if arr.dtype != np.float64:
        arr = arr.astype(np.float64)
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
