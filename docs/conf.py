"""Sphinx configuration of the gym-advrl documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent / "_ext"))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gym_advrl  # noqa: E402

project = "gym-advrl"
author = "gym-advrl contributors"
release = version = gym_advrl.__version__
copyright = "gym-advrl contributors"  # noqa: A001

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "advrl_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_generated/*.md", "README.md"]
html_theme = "furo"
html_title = f"gym-advrl {release}"
html_static_path: list[str] = []
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
# SB3's own docstrings (inherited members) use cross-references this site does not define.
suppress_warnings = ["ref.python", "myst.header"]
