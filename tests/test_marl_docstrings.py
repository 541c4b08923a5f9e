"""The MARL docstrings (what the docs site renders) state the spaces and arguments of the live envs."""

from __future__ import annotations

import ast
import inspect
import math
import re

import numpy as np
import pytest

from gym_advrl.marl import _particles, competitive_v0, cooperative_v0, mixed_v0

MODULES = [cooperative_v0, competitive_v0, mixed_v0]
SECTIONS = (
    "Description",
    "Action Space",
    "Observation Space",
    "Rewards",
    "Arguments",
)
#: What the three envs share, written once in ``gym_advrl.marl._particles`` (bullets of its section).
SHARED_ITEMS = (
    "Actions",
    "Observations",
    "Rewards",
    "Start",
    "Episode end",
    "Arguments",
    "Teams",
    "Copies",
    "Version history",
)
#: ``integer in [1, 100]``, ``float in (sqrt(2), 1e4]``, ``integer >= 1``.
RANGE = re.compile(r"(integer|float) (?:in ([\[(])(\S+), (\S+)([\])])|>= (\S+))")
NAMED_BOUNDS = {"sqrt(2)": math.sqrt(2.0)}


def module_id(mod: object) -> str:
    return mod.__name__.rsplit(".", 1)[1]


def section(doc: str, title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    assert match, f"the docstring has no '## {title}' section"
    return match.group(1)


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """``{argument: {column: cell}}`` from the markdown table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, _rule, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    return {row[0].strip("`"): dict(zip(header, row, strict=True)) for row in rows}


def arguments_table(doc: str) -> dict[str, dict[str, str]]:
    """The env's own Arguments table, then the arguments the three envs share (written once, in
    ``gym_advrl.marl._particles``)."""
    shared = section(inspect.getdoc(_particles), "What the three environments share")
    return {**table_rows(section(doc, "Arguments")), **table_rows(shared)}


def accepts(mod: object, name: str, value: object) -> bool:
    try:
        mod.parallel_env(**{name: value})
    except ValueError as err:
        assert name in str(err)
        return False
    return True


def boundary_cases(valid: str) -> list[tuple[object, bool]]:
    """``(value, accepted)`` pairs at and just beyond each bound of a numeric range."""
    match = RANGE.fullmatch(valid)
    assert match, f"unrecognised valid values {valid!r}"
    kind, low_bracket, low, high, high_bracket, at_least = match.groups()
    bounds = [(low or at_least, low_bracket or "[", -1)] + ([(high, high_bracket, +1)] if high else [])
    cases: list[tuple[object, bool]] = []
    for text, bracket, outward in bounds:
        bound = NAMED_BOUNDS.get(text) or float(text)
        inclusive = bracket in "[]"
        if kind == "integer":
            cases += [(int(bound), True), (int(bound) + outward, False)]
        elif inclusive:  # the bound is valid, the next float beyond it is not
            cases += [(bound, True), (float(np.nextafter(bound, outward * np.inf)), False)]
        else:  # the bound is invalid, the next float inside is valid
            cases += [(bound, False), (float(np.nextafter(bound, -outward * np.inf)), True)]
    return cases


@pytest.mark.parametrize("mod", MODULES, ids=module_id)
def test_docstring_is_static_and_in_gymnasium_format(mod) -> None:
    source = inspect.getsource(mod)
    assert "__doc__" not in source, "the documentation must be written in the module, not built at run time"
    doc = inspect.getdoc(mod.raw_env)
    for title in SECTIONS:
        assert section(doc, title).strip(), f"'## {title}' is empty"
    assert "What the three environments share" in " ".join(doc.split()), "no pointer to the shared section"


def test_shared_docstring_has_every_common_item() -> None:
    shared = section(inspect.getdoc(_particles), "What the three environments share")
    for item in SHARED_ITEMS:
        assert re.search(rf"^\* \*\*{item}\*\*", shared, re.M), f"no '* **{item}**' bullet"


@pytest.mark.parametrize("mod", MODULES, ids=module_id)
def test_docstring_states_the_spaces_of_a_default_env(mod) -> None:
    doc = inspect.getdoc(mod.raw_env)
    env = mod.parallel_env()
    agent = env.possible_agents[0]
    stated = re.findall(r"shape ``(\(\d+,\))`` with the\s+default", section(doc, "Observation Space"))
    assert stated == [str(env.observation_space(agent).shape)]
    assert all(env.observation_space(a) == env.observation_space(agent) for a in env.possible_agents)
    (per_agent,) = re.findall(r"``\((\d+) n_agents,\)``", section(doc, "Observation Space"))
    assert env.state_space.shape == (int(per_agent) * len(env.possible_agents),)
    for continuous in (True, False):
        space = mod.parallel_env(continuous_actions=continuous).action_space(agent)
        assert f"``{space}``" in section(doc, "Action Space")


@pytest.mark.parametrize("mod", MODULES, ids=module_id)
def test_arguments_table_lists_every_argument_with_its_default(mod) -> None:
    table = arguments_table(inspect.getdoc(mod.raw_env))
    parameters = inspect.signature(mod.parallel_env).parameters
    assert list(table) == list(parameters)
    for name, parameter in parameters.items():
        assert table[name]["Default"] == repr(parameter.default), name


@pytest.mark.parametrize("mod", MODULES, ids=module_id)
def test_arguments_table_states_the_valid_ranges(mod) -> None:
    for name, row in arguments_table(inspect.getdoc(mod.raw_env)).items():
        valid = row["Valid values"]
        if RANGE.fullmatch(valid):
            cases = boundary_cases(valid)
        else:  # a list of choices: ``True or False``, ``None, "rgb_array", "human"``
            choices = [ast.literal_eval(choice) for choice in re.split(r", | or ", valid)]
            cases = [(choice, True) for choice in choices] + [("not listed", False)]
        assert [(value, accepts(mod, name, value)) for value, _ in cases] == cases, name
