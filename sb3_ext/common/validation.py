"""Argument checks shared by the sb3_ext algorithms, replay buffers, dynamics models and planners.

Every check returns the (converted) value or raises :class:`ValueError` whose message names the
argument and the values it accepts, so that a bad hyperparameter fails in ``__init__`` instead of
deep inside ``learn()``. The generic integer / number / choice checks are gym_advrl's, so that the
envs and the algorithms word their errors alike.

:func:`check_algorithm_arguments` holds the checks of the arguments every sb3_ext algorithm
inherits from Stable-Baselines3 (which accepts e.g. ``batch_size=0`` or ``gamma=1.5`` and then
fails with a ``ZeroDivisionError`` or trains to NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from gymnasium import spaces

from gym_advrl.utils.validation import check_choice, check_float, check_int

__all__ = [
    "INHERITED_ARGUMENTS",
    "check_algorithm_arguments",
    "check_bool",
    "check_discrete_actions",
    "check_choice",
    "check_float",
    "check_holdout_ratio",
    "check_int",
    "check_learning_rate",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_unit_interval",
    "reject_policy_kwargs",
]

#: The Stable-Baselines3 arguments :func:`check_algorithm_arguments` checks.
INHERITED_ARGUMENTS = ("learning_rate", "gamma", "batch_size", "buffer_size", "learning_starts")

_REAL = (int, float, np.integer, np.floating)


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool | np.bool_) and isinstance(value, _REAL)


def check_unit_interval(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number in ``[0, 1]``."""
    if not _is_real(value) or not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int if it is a whole number >= 1 (``3.0`` is accepted as 3)."""
    if not _is_real(value) or not np.isfinite(value) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number >= 0 (loss weights, noise scales)."""
    if not _is_real(value) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number > 0."""
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_holdout_ratio(value: Any) -> float:
    """Return the fraction of a data set held out for validation: a number in ``[0, 1)``."""
    if not _is_real(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"holdout_ratio must be in [0, 1), got {value!r}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a bool if it is ``True`` or ``False`` (a numpy bool included)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_learning_rate(value: Any, name: str = "learning_rate") -> float | Callable[[float], float]:
    """Return a learning rate: a finite number > 0, or a schedule (a callable of the progress remaining)."""
    if callable(value):
        return value
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"{name} must be a finite number > 0 or a schedule (a callable of the progress remaining "
            f"from 1 to 0), got {value!r}"
        )
    return value


def check_algorithm_arguments(
    *,
    learning_rate: Any,
    gamma: Any,
    batch_size: Any = None,
    buffer_size: Any = None,
    learning_starts: Any = None,
) -> None:
    """Check the Stable-Baselines3 arguments an algorithm inherits; ``None`` skips one it has not.

    ``learning_rate``: a finite number > 0 or a schedule; ``gamma`` in ``[0, 1]``;
    ``batch_size >= 1``; ``buffer_size >= batch_size``; ``learning_starts >= 0``.
    """
    check_learning_rate(learning_rate)
    check_float("gamma", gamma, 0.0, 1.0)
    if batch_size is not None:
        _check_int_at_least("batch_size", batch_size, 1)
    if buffer_size is not None:
        low = 1 if batch_size is None else batch_size
        _check_int_at_least("buffer_size", buffer_size, low, "" if batch_size is None else " (batch_size)")
    if learning_starts is not None:
        _check_int_at_least("learning_starts", learning_starts, 0)


def check_discrete_actions(
    algorithm: str, observation_space: spaces.Space, action_space: spaces.Space, reason: str
) -> None:
    """Refuse the spaces that an algorithm acting by a softmax over ``Discrete`` actions cannot take.

    :param algorithm: the algorithm's name, for the messages
    :param observation_space: the env's observation space; a ``Dict`` is refused
    :param action_space: the env's action space; anything but ``Discrete`` is refused
    :param reason: why the actions must be ``Discrete``, in parentheses after the message
    """
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{algorithm} supports only a Discrete action space ({reason}), got {action_space}")
    if isinstance(observation_space, spaces.Dict):
        raise ValueError(f"{algorithm} does not support a Dict observation space, got {observation_space}")


def reject_policy_kwargs(algorithm: str, policy_kwargs: dict[str, Any] | None, names: Iterable[str]) -> None:
    """Refuse ``policy_kwargs`` that hold one of ``names``: arguments the algorithm takes itself.

    The algorithm hands them to its policy; given in ``policy_kwargs`` they would be overridden.
    """
    for name in names:
        if name in (policy_kwargs or {}):
            raise ValueError(f"pass {name} to {algorithm}, not in policy_kwargs")


def _check_int_at_least(name: str, value: Any, low: int, what: str = "") -> None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{what}, got {value!r}")
