"""Every environment and every public class of ``sb3_ext`` has its place in the documentation site."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import pytest

import gym_advrl
import gym_advrl.marl
import sb3_ext

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = {path: path.read_text() for path in DOCS.rglob("*.md") if "_build" not in path.parts}
ENV_DIRECTIVE = re.compile(r"^```\{advrl-env\} (\S+)$", re.M)
DOCUMENTED_ENVS = {name for text in PAGES.values() for name in ENV_DIRECTIVE.findall(text)}
DOCUMENTED_CLASSES = {name for text in PAGES.values() for name in re.findall(r"autoclass:: (\S+)", text)}


@pytest.mark.parametrize("env_id", [spec[0] for spec in gym_advrl.ENV_SPECS])
def test_every_registered_env_has_a_page(env_id: str) -> None:
    assert env_id in DOCUMENTED_ENVS, f"no docs page holds ```{{advrl-env}} {env_id}"


@pytest.mark.parametrize(
    "module", sorted(m.name for m in pkgutil.iter_modules(gym_advrl.marl.__path__) if m.name[-3:-1] == "_v")
)
def test_every_multi_agent_env_has_a_page(module: str) -> None:
    assert module in DOCUMENTED_ENVS


@pytest.mark.parametrize("name", sb3_ext.__all__)
def test_every_public_class_of_sb3_ext_is_documented(name: str) -> None:
    assert f"sb3_ext.{name}" in DOCUMENTED_CLASSES, f"no docs page has 'autoclass:: sb3_ext.{name}'"


def test_every_page_is_in_a_table_of_contents() -> None:
    listed = set()
    for path, text in PAGES.items():
        for block in re.findall(r"```\{toctree\}\n(.*?)```", text, re.S):
            for line in block.splitlines():
                if line.strip() and not line.startswith(":"):
                    listed.add((path.parent / line.strip()).with_suffix(".md").resolve())
    orphans = [str(p.relative_to(DOCS)) for p in PAGES if p.name != "index.md" or p.parent != DOCS]
    assert sorted(o for o in orphans if (DOCS / o).resolve() not in listed) == []
