"""Every script in ``examples/`` runs as written, with a tiny budget.

A new example is covered automatically: it must accept ``--timesteps``; give it extra
small-budget arguments or an expected output line in ``SMALL_BUDGET`` below if it needs them.
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import sys
import warnings
from pathlib import Path

import pytest
from tqdm import TqdmExperimentalWarning

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: script -> (arguments for a tiny run, a string its output must contain)
SMALL_BUDGET: dict[str, tuple[list[str], str]] = {
    "quickstart.py": (["--timesteps", "200", "--eval-episodes", "1"], "| random |"),
    "world_model_mpc.py": (
        [
            "--timesteps",
            "60",
            "--eval-episodes",
            "1",
            "--out",
            "demo",
            "--horizon",
            "3",
            "--population-size",
            "20",
        ],
        "| random |",
    ),
    "per_dqn.py": (["--timesteps", "300"], "| PERDQN |"),
    "prediction_strip.py": (
        ["--timesteps", "60", "--updates", "2", "--size", "16", "--horizon", "5", "--context", "2"],
        "mean absolute pixel error",
    ),
    "aux_dqn.py": (["--timesteps", "200"], "AuxDQN (CNN, shift augmentation)"),
    "dyna.py": (["--timesteps", "300"], "imagined transitions stored"),
    "option_critic.py": (["--timesteps", "256"], "option shares"),
    "standalone_env.py": (["--timesteps", "2000", "--episodes", "2"], "mean steps to the goal"),
    "transfer_gridworld.py": (["--timesteps", "300"], "from scratch"),
    "domain_randomization.py": (["--timesteps", "150", "--eval-episodes", "1"], "randomized m in"),
    "marl_ppo_parameter_sharing.py": (
        [
            "--timesteps",
            "192",
            "--n-envs",
            "2",
            "--n-steps",
            "32",
            "--batch-size",
            "64",
            "--max-cycles",
            "20",
            "--eval-episodes",
            "1",
        ],
        "random",
    ),
}


#: Examples that need Ray (the [ray] extra, with its own gymnasium): skipped here where Ray is not
#: installed; ``make test-ray`` runs them in the Ray venv (tests/ray/test_ray_examples.py).
RAY_EXAMPLES = ("rllib_marl.py", "rllib_ppo.py")


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(
    script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    if script in RAY_EXAMPLES:
        if importlib.util.find_spec("ray") is None:
            pytest.skip("needs Ray; make test-ray runs it in .venv-ray")
        pytest.skip("a Ray example: tests/ray/test_ray_examples.py runs it in its own process")
    args, expected = SMALL_BUDGET.get(script, (["--timesteps", "200"], ""))
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setattr(sys, "argv", [script, *args])
    # In-process, as `python examples/<script> <args>` runs it, without paying for a new interpreter.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # As a user's process has it: SB3 silences tqdm's notice about its rich bar when it is imported
        # (an import that happened, and whose filter pytest reset, before this test).
        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught] == []
    out = capsys.readouterr().out
    assert out.strip(), f"{script} printed nothing"
    assert expected in out
    assert_tables_are_complete(out)


def assert_tables_are_complete(out: str) -> None:
    """Every markdown table the example prints has a header, a separator and rows of as many cells,
    and every number in it is finite (a NaN or inf in a results table is a broken example)."""
    lines = out.splitlines()
    for index, line in enumerate(lines):
        separator = lines[index + 1] if index + 1 < len(lines) else ""
        if not (line.startswith("|") and separator.startswith("|-") and set(separator) <= set("|-: ")):
            continue
        width = line.count("|")
        rows = []
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            rows.append(row)
        assert rows, f"table without rows: {line}"
        for row in rows:
            assert row.count("|") == width, f"ragged table row: {row}"
            assert not re.search(r"\b(nan|inf)\b", row, re.IGNORECASE), f"non-finite value in: {row}"
