"""rl-zoo3, as an outside client, trains on our envs with the hyperparameter file we ship."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rl_zoo3")

REPO = Path(__file__).resolve().parents[1]


def test_rl_zoo3_trains_ppo_on_gridworld(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "AdvRL/GridWorld-v0",
               "--gym-packages", "gym_advrl", "-conf", str(REPO / "hyperparams" / "ppo.yml"),
               "-n", "512", "-f", str(tmp_path), "--seed", "0", "--eval-freq", "-1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = list((tmp_path / "ppo").glob("AdvRL-GridWorld-v0_*/AdvRL-GridWorld-v0.zip"))
    assert len(saved) == 1, result.stdout[-2000:]
    assert "n_steps" in (saved[0].parent / "AdvRL-GridWorld-v0" / "config.yml").read_text()
