"""Search spaces for ``advrl tune``: the ``--hp KEY=VALUE`` syntax of ``advrl train`` plus distributions.

A value is either fixed, a Python literal exactly as ``advrl train --hp`` takes it, or one of

* ``loguniform(low, high)``: a float, uniform in log space, ``0 < low < high``;
* ``uniform(low, high)``: a float, ``low < high``;
* ``choice([v1, v2, ...])``: one of the listed literals (any kind the parameter takes).

For example ``learning_rate=loguniform(1e-4, 1e-2) batch_size=choice([32, 64]) gamma=0.98``. The
same entries may come from a YAML mapping (:func:`read_space_file`), one key per hyperparameter.
Every bound and every choice is checked like a fixed value (its kind from the algorithm's
signature, its range for the shared SB3 hyperparameters), so a sweep never starts with a
hyperparameter its trials would all reject. Errors are ``ValueError``\\ s naming the argument.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from sb3_ext.hyperparameters import (
    annotation_kinds,
    check_value,
    constructor_parameters,
    parse_hyperparameters,
)

#: The distributions a search space may use, with the form of their arguments.
DISTRIBUTIONS: dict[str, str] = {
    "loguniform": "loguniform(low, high)",
    "uniform": "uniform(low, high)",
    "choice": "choice([v1, v2, ...])",
}

#: Schedulers ``advrl tune --scheduler`` accepts: ASHA (early stopping), FIFO (every trial to the end).
SCHEDULERS = ("asha", "fifo")

_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Distribution:
    """One searched hyperparameter: ``kind`` is a key of :data:`DISTRIBUTIONS`, ``args`` its arguments
    (``(low, high)``, or ``(values,)`` for ``choice``)."""

    kind: str
    args: tuple[Any, ...]

    def to_ray(self) -> Any:
        """The matching ``ray.tune`` search domain (``tune.loguniform(low, high)``, ...)."""
        from ray import tune

        return getattr(tune, self.kind)(*self.args)

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(repr(arg) for arg in self.args)})"


def parse_search_space(pairs: list[str], cls: type) -> tuple[dict[str, Any], dict[str, Distribution]]:
    """``["key=value", ...]`` -> ``(fixed hyperparameters, searched ones)`` for ``cls``.

    :param pairs: ``KEY=VALUE`` entries; a value is a literal or a distribution (module docstring).
    :param cls: the algorithm whose constructor the keys must belong to.
    :return: the fixed keyword arguments and a :class:`Distribution` per searched one.
    :raises ValueError: naming the entry, for an unknown key, an unknown distribution, bad bounds
        or a value the parameter does not take.
    """
    parameters = constructor_parameters(cls)
    fixed_pairs: list[str] = []
    searched: dict[str, Distribution] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        call = _CALL.match(raw)
        if not (sep and key and call):
            fixed_pairs.append(pair)  # a literal: advrl train's own checks below
            continue
        if key not in parameters:
            raise ValueError(
                f"unknown hyperparameter {key!r} for {cls.__name__}; valid ones: {', '.join(sorted(parameters))}"
            )
        if key in searched or any(p.partition("=")[0] == key for p in fixed_pairs):
            raise ValueError(f"--hp {key} is given twice")
        searched[key] = parse_distribution(key, call.group(1), call.group(2), parameters[key].annotation)
    fixed = parse_hyperparameters(fixed_pairs, cls)
    twice = sorted(set(fixed) & set(searched))
    if twice:
        raise ValueError(f"--hp {twice[0]} is given twice")
    return fixed, searched


def parse_distribution(key: str, kind: str, arguments: str, annotation: Any) -> Distribution:
    """``kind(arguments)`` for the parameter ``key`` with this annotation, checked."""
    entry = f"--hp {key}={kind}({arguments})"
    if kind not in DISTRIBUTIONS:
        raise ValueError(
            f"{entry}: unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS.values())}"
        )
    try:
        args = ast.literal_eval(f"({arguments},)") if arguments.strip() else ()
    except (ValueError, SyntaxError):
        raise ValueError(
            f"{entry}: the arguments are not Python literals; expected {DISTRIBUTIONS[kind]}"
        ) from None
    kinds = annotation_kinds(annotation)
    if kind == "choice":
        if len(args) != 1 or not isinstance(args[0], (list, tuple)) or len(args[0]) == 0:
            raise ValueError(f"{entry}: expected {DISTRIBUTIONS[kind]} with at least one value")
        values = list(args[0])
        for value in values:
            check_value(key, value, kinds)
        return Distribution(kind, (values,))
    numbers = len(args) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numbers:
        raise ValueError(f"{entry}: expected {DISTRIBUTIONS[kind]} with two numbers")
    if kinds and float not in kinds:
        raise ValueError(
            f"{entry}: {key} takes {', '.join(sorted({k.__name__ for k in kinds}))}, not a float; "
            f"use choice([...]) for it"
        )
    low, high = float(args[0]), float(args[1])
    if not low < high or (kind == "loguniform" and low <= 0):
        bound = "0 < low < high" if kind == "loguniform" else "low < high"
        raise ValueError(f"{entry}: expected {bound}")
    for bound_value in (low, high):
        check_value(key, bound_value, kinds)
    return Distribution(kind, (low, high))


def space_pairs(mapping: Any, option: str) -> list[str]:
    """A YAML mapping of hyperparameters -> ``KEY=VALUE`` entries as the command line writes them.

    Strings are kept as written, so that ``1e-4`` (a string to YAML 1.1) is read as a number, a
    distribution as a distribution and a bare word as a string, exactly as after ``--hp``; other
    values are written as Python literals.
    """
    if mapping is None:
        return []
    if not isinstance(mapping, dict) or not all(isinstance(key, str) for key in mapping):
        raise ValueError(f"{option}: expected a mapping of hyperparameter names to values")
    return [
        f"{key}={value}" if isinstance(value, str) else f"{key}={value!r}" for key, value in mapping.items()
    ]


def read_space_file(path: str, option: str) -> list[str]:
    """The ``KEY=VALUE`` entries of the YAML file ``path`` (a mapping), for ``option``'s errors."""
    import yaml

    try:
        with open(path) as handle:
            mapping = yaml.safe_load(handle)
    except OSError as err:
        raise ValueError(f"{option} {path!r} cannot be read: {err.strerror}") from None
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{option} {path!r} is not valid YAML: {first}") from None
    return space_pairs(mapping, f"{option} {path!r}")
