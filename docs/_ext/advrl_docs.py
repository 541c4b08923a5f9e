"""Sphinx directives that build documentation from the code itself, so it cannot drift.

* ``advrl-env``: one environment's section: a picture drawn by the env's own ``rgb_array``
  rendering, its spaces and limits read from a live instance, and its class docstring (written
  in Gymnasium's format) rendered as Markdown. The argument is a registered ``AdvRL/`` id or a
  ``gym_advrl.marl`` module name such as ``cooperative_v0``.
* ``advrl-cli``: the ``--help`` text of ``advrl`` and of each of its subcommands, from argparse.
* ``advrl-docstring``: one ``## `` section of a module's docstring rendered as Markdown, e.g. what
  the particle worlds share, written once in ``gym_advrl.marl._particles``. Arguments: the module
  and the section's title.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from pathlib import Path

import numpy as np
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

GENERATED = "_generated"


def _write_png(frame: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.ascontiguousarray(frame))


def _demote_headings(markdown: str, levels: int) -> str:
    return "\n".join("#" * levels + line if line.startswith("#") else line for line in markdown.splitlines())


def _single_agent(env_id: str) -> tuple[np.ndarray, list[tuple[str, str]], str]:
    import gymnasium as gym

    import gym_advrl  # noqa: F401  (registers the ids)

    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(8):  # a few random steps, so that the picture shows a state in motion
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    frame = env.render()
    spec = gym.spec(env_id)
    module, _, name = str(spec.entry_point).partition(":")
    cls = getattr(importlib.import_module(module), name)
    rows = [
        ("Make", f'`gym.make("{env_id}")`'),
        ("Action space", f"`{env.action_space}`"),
        ("Observation space", f"`{env.observation_space}`"),
        ("Episode limit", f"{spec.max_episode_steps} steps (truncation)"),
        ("Class", f"`{cls.__module__}.{cls.__name__}`"),
    ]
    env.close()
    return frame, rows, inspect.getdoc(cls) or ""


def _multi_agent(module_name: str) -> tuple[np.ndarray, list[tuple[str, str]], str]:
    module = importlib.import_module(f"gym_advrl.marl.{module_name}")
    env = module.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(8):
        env.step({agent: env.action_space(agent).sample() for agent in env.agents})
    frame = env.render()
    agent = env.possible_agents[0]
    rows = [
        ("Import", f"`from gym_advrl.marl import {module_name}`"),
        ("Agents", ", ".join(f"`{a}`" for a in env.possible_agents)),
        ("Action space (each)", f"`{env.action_space(agent)}`"),
        ("Observation space (each)", f"`{env.observation_space(agent)}`"),
        ("Episode limit", f"`max_cycles={env.unwrapped.max_cycles}` (truncation)"),
    ]
    env.close()
    return frame, rows, inspect.getdoc(module.raw_env) or ""


class EnvDirective(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        frame, rows, docstring = _single_agent(name) if name.startswith("AdvRL/") else _multi_agent(name)
        slug = name.replace("/", "-")
        _write_png(frame, Path(self.env.srcdir) / GENERATED / "envs" / f"{slug}.png")
        self.env.note_dependency(__file__)
        lines = [
            f"## {name}",
            "",
            f"```{{image}} /{GENERATED}/envs/{slug}.png",
            f":alt: {name} rendered by its rgb_array mode",
            ":width: 300px",
            "```",
            "",
            "| | |",
            "|---|---|",
            *(f"| {key} | {value} |" for key, value in rows),
            "",
            _demote_headings(textwrap.dedent(docstring), 1),
        ]
        container = nodes.container(classes=["advrl-env"])
        self.state.nested_parse(
            StringList("\n".join(lines).splitlines(), source=f"<docstring of {name}>"),
            0,
            container,
            match_titles=True,
        )
        return [container]


class DocstringSectionDirective(SphinxDirective):
    required_arguments = 2
    final_argument_whitespace = True
    has_content = False

    def run(self) -> list[nodes.Node]:
        module_name, title = self.arguments
        doc = inspect.getdoc(importlib.import_module(module_name)) or ""
        start = doc.find(f"## {title}\n")
        if start < 0:
            raise self.error(f"{module_name}'s docstring has no '## {title}' section")
        end = doc.find("\n## ", start + 1)
        text = doc[start : end if end >= 0 else len(doc)]
        self.env.note_dependency(__file__)
        container = nodes.container(classes=["advrl-docstring"])
        self.state.nested_parse(
            StringList(text.splitlines(), source=f"<docstring of {module_name}>"),
            0,
            container,
            match_titles=True,
        )
        return [container]


class CliDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from sb3_ext.cli import build_parser

        parser = build_parser()
        subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        result: list[nodes.Node] = []
        for title, sub in [
            ("advrl", parser),
            *((f"advrl {name}", p) for name, p in subparsers.choices.items()),
        ]:
            section = nodes.section(ids=[nodes.make_id(title)], names=[nodes.fully_normalize_name(title)])
            section += nodes.title(text=title)
            section += nodes.literal_block(text=sub.format_help(), language="text")
            self.state.document.note_implicit_target(section)
            result.append(section)
        return result


def setup(app):  # noqa: ANN001, ANN201  (Sphinx's extension protocol)
    app.add_directive("advrl-env", EnvDirective)
    app.add_directive("advrl-cli", CliDirective)
    app.add_directive("advrl-docstring", DocstringSectionDirective)
    return {"parallel_read_safe": True, "version": "1"}
