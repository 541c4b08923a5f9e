"""The Ray examples run as written, each in its own process (as a user runs it), with a tiny budget.
tests/test_examples.py lists them in ``RAY_EXAMPLES`` and leaves them to this module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.rllib")

from tests.ray.conftest import ray_processes  # noqa: E402
from tests.test_examples import EXAMPLES, RAY_EXAMPLES, assert_tables_are_complete  # noqa: E402

#: script -> (arguments for a tiny run, lines its output must contain)
SMALL_BUDGET: dict[str, tuple[list[str], list[str]]] = {
    "rllib_ppo.py": (
        ["--env", "AdvRL/GridWorld-v0", "--timesteps", "400", "--batch-size", "200", "--env-runners", "2"],
        ["by 2 remote env runner(s)", "| random |", "| PPO (last iteration's episodes) |"],
    ),
    "rllib_marl.py": (
        ["--env", "mixed_v0", "--policies", "per-team", "--timesteps", "400", "--batch-size", "200"],
        ["| red | red_0, red_1 |", "| blue | blue_0 |"],
    ),
}


def test_every_ray_example_has_a_small_budget() -> None:
    assert sorted(SMALL_BUDGET) == sorted(RAY_EXAMPLES)
    assert all((EXAMPLES / script).exists() for script in RAY_EXAMPLES)


@pytest.mark.parametrize("script", RAY_EXAMPLES)
def test_ray_example_runs(script: str, tmp_path: Path) -> None:
    args, expected = SMALL_BUDGET[script]
    before = ray_processes()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for line in expected:
        assert line in result.stdout, result.stdout
    assert_tables_are_complete(result.stdout)
    assert ray_processes() <= before  # the example shut its local cluster down
