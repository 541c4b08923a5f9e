"""``KEY=VALUE`` hyperparameters from the command line, checked against the algorithm's signature.

Values are Python literals (``3e-4``, ``[64, 64]``, ``{'net_arch': [64]}``, ``'auto'``); a bare word
is kept as a string only where the parameter accepts strings. Each value must match the kinds of
its parameter's annotation (a float where a float is expected, an int for an int, ...) and, for the
hyperparameters every SB3 algorithm shares, lie in its valid range. Errors are ``ValueError``s that
name the argument, so that the command line reports them on one line.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
from typing import Any

#: Parameters set by the command line itself, never through ``--hp``.
RESERVED = frozenset({"self", "policy", "env", "kwargs", "args", "seed", "tensorboard_log", "verbose"})

#: Valid ranges of the hyperparameters shared across SB3 algorithms: (low, high, low inclusive).
RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, math.inf, False),
    "gamma": (0.0, 1.0, True),
    "gae_lambda": (0.0, 1.0, True),
    "tau": (0.0, 1.0, True),
    "exploration_fraction": (0.0, 1.0, True),
    "exploration_initial_eps": (0.0, 1.0, True),
    "exploration_final_eps": (0.0, 1.0, True),
    "batch_size": (1, math.inf, True),
    "buffer_size": (1, math.inf, True),
    "n_steps": (1, math.inf, True),
    "n_epochs": (1, math.inf, True),
    "target_update_interval": (1, math.inf, True),
    "learning_starts": (0, math.inf, True),
    "vf_coef": (0.0, math.inf, True),
    "max_grad_norm": (0.0, math.inf, False),
    "clip_range": (0.0, math.inf, False),
}

# Kinds of value an annotation admits, found by name in its text with generic arguments removed
# ("dict[str, Any] | None" -> "dict | None" -> dict and None).
_KINDS = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "dict": (dict,),
    "list": (list, tuple),
    "tuple": (list, tuple),
    "Sequence": (list, tuple),
    "None": (type(None),),
    "Optional": (type(None),),
}


def parse_hyperparameters(pairs: list[str], cls: type) -> dict[str, Any]:
    """``["key=value", ...]`` -> keyword arguments of ``cls``, each checked (see the module's docstring)."""
    parameters = constructor_parameters(cls)
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--hp expects key=value, got {pair!r}")
        if key not in parameters:
            raise ValueError(
                f"unknown hyperparameter {key!r} for {cls.__name__}; valid ones: {', '.join(sorted(parameters))}"
            )
        kinds = annotation_kinds(parameters[key].annotation)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            if kinds and str not in kinds:
                raise ValueError(
                    f"--hp {key}={raw}: not a Python literal (numbers, lists, dicts such as "
                    f"{{'net_arch': [64, 64]}}, quoted strings)"
                ) from None
            value = raw
        check_value(key, value, kinds)
        params[key] = value
    return params


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls(...)`` accepts, looking through ``**kwargs`` pass-throughs to the
    base classes (``PERDQN(policy, env, *args, **kwargs)`` takes every argument of ``DQN``)."""
    parameters: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        signature = inspect.signature(klass.__init__).parameters
        for name, parameter in signature.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if name not in RESERVED and not name.startswith("_"):
                parameters.setdefault(name, parameter)
        if not any(p.kind == p.VAR_KEYWORD for p in signature.values()):
            break
    return parameters


def annotation_kinds(annotation: Any) -> tuple[type, ...]:
    """The Python types a literal for this annotation may have; empty if the annotation says nothing usable."""
    if annotation is inspect.Parameter.empty:
        return ()
    text = annotation if isinstance(annotation, str) else str(annotation)
    while "[" in text:  # drop generic arguments, innermost first
        text = re.sub(r"\[[^\[\]]*\]", "", text)
    kinds: list[type] = []
    for name, types in _KINDS.items():
        if re.search(rf"\b{name}\b", text):
            kinds.extend(types)
    return tuple(dict.fromkeys(kinds))


def check_value(key: str, value: Any, kinds: tuple[type, ...]) -> None:
    """Raise ``ValueError`` naming ``key`` if ``value`` has the wrong kind or lies outside its range."""
    if kinds:
        # bool is an int to Python, but True is not a batch size.
        wrong = isinstance(value, bool) and bool not in kinds
        if wrong or not isinstance(value, kinds):
            expected = ", ".join(sorted({kind.__name__ for kind in kinds}))
            raise ValueError(f"--hp {key}={value!r}: expected {expected}, got {type(value).__name__}")
    if key in RANGES and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high, low_inclusive = RANGES[key]
        inside = (value >= low if low_inclusive else value > low) and value <= high and math.isfinite(value)
        if not inside:
            interval = (
                f"{'[' if low_inclusive else '('}{low:g}, {high:g}{']' if math.isfinite(high) else ')'}"
            )
            raise ValueError(f"--hp {key}={value!r}: must lie in {interval}")
