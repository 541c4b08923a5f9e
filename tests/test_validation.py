"""The argument checks shared by sb3_ext's algorithms, buffers, models and planners."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gymnasium import spaces

from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_bool,
    check_discrete_actions,
    check_holdout_ratio,
    check_learning_rate,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_unit_interval,
    reject_policy_kwargs,
)


@pytest.mark.parametrize(
    "check, good, converted, bad",
    [
        (
            check_unit_interval,
            [0, 1, np.float32(0.5)],
            [0.0, 1.0, 0.5],
            [-0.01, 1.01, np.nan, True, "0.5", None],
        ),
        (check_positive_int, [1, np.int64(7), 3.0], [1, 7, 3], [0, -2, 1.5, np.nan, np.inf, True, "3"]),
        (check_nonnegative, [0, 2.5], [0.0, 2.5], [-1e-9, np.inf, np.nan, False, "1"]),
        (check_positive, [1e-12, 3], [1e-12, 3.0], [0, -1.0, np.inf, np.nan, True]),
        (check_holdout_ratio, [0, 0.99], [0.0, 0.99], [1.0, -0.1, np.nan]),
        (check_bool, [True, np.bool_(False)], [True, False], [1, 0, "yes", None]),
    ],
)
def test_checks_convert_good_values_and_name_the_argument_for_bad_ones(check, good, converted, bad) -> None:
    name = "holdout_ratio" if check is check_holdout_ratio else "arg"
    call = check if check is check_holdout_ratio else lambda value: check(name, value)
    for value, expected in zip(good, converted, strict=True):
        result = call(value)
        assert result == expected and type(result) is type(expected)
    for value in bad:
        with pytest.raises(ValueError, match=rf"^{name} must .*got {value!r}"):
            call(value)


def test_learning_rate_is_a_positive_number_or_a_schedule() -> None:
    def schedule(progress: float) -> float:
        return 1e-3 * progress

    assert check_learning_rate(schedule) is schedule
    assert check_learning_rate(3e-4) == 3e-4
    for bad in (0.0, -1e-3, float("nan"), float("inf"), "1e-3", None):
        with pytest.raises(ValueError, match="learning_rate must be a finite number > 0 or a schedule"):
            check_learning_rate(bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), r"batch_size must be an integer >= 1, got 0"),
        (dict(batch_size=32, buffer_size=31), r"buffer_size must be an integer >= 32 \(batch_size\), got 31"),
        (dict(buffer_size=0), r"buffer_size must be an integer >= 1, got 0"),
        (dict(batch_size=2.0), r"batch_size must be an integer"),
        (dict(gamma=1.01), r"gamma must be a number in \[0(\.0)?, 1(\.0)?\], got 1.01"),
        (dict(learning_starts=-1), r"learning_starts must be an integer >= 0, got -1"),
    ],
)
def test_inherited_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_algorithm_arguments(**{"learning_rate": 1e-3, "gamma": 0.99, **kwargs})
    # The same call without the bad value passes; arguments an algorithm lacks are skipped.
    check_algorithm_arguments(learning_rate=1e-3, gamma=0.0, batch_size=32, buffer_size=32, learning_starts=0)
    check_algorithm_arguments(learning_rate=1e-3, gamma=1.0)


def test_check_discrete_actions_names_the_algorithm_the_space_and_the_reason():
    box, discrete = spaces.Box(-1, 1, (2,)), spaces.Discrete(3)
    check_discrete_actions("Algo", box, discrete, "a softmax over actions")  # accepted
    with pytest.raises(
        ValueError,
        match=re.escape(f"Algo supports only a Discrete action space (a softmax over actions), got {box}"),
    ):
        check_discrete_actions("Algo", box, box, "a softmax over actions")
    observations = spaces.Dict({"x": box})
    with pytest.raises(
        ValueError, match=re.escape(f"Algo does not support a Dict observation space, got {observations}")
    ):
        check_discrete_actions("Algo", observations, discrete, "a softmax over actions")


def test_reject_policy_kwargs_refuses_the_algorithms_own_arguments():
    reject_policy_kwargs("Algo", None, ["c"])
    reject_policy_kwargs("Algo", {"net_arch": [8]}, ["c", "alpha"])
    with pytest.raises(ValueError, match=re.escape("pass alpha to Algo, not in policy_kwargs")):
        reject_policy_kwargs("Algo", {"net_arch": [8], "alpha": 1.0}, ["c", "alpha"])
