"""``advrl tune`` on a real local Ray cluster: a PERDQN sweep on CartPole-v1 whose run directory holds
the trial table, the best configuration and the curves, a crashing trial that does not stop the
sweep, and the best configuration retrained by ``advrl train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

import ray  # noqa: E402

from sb3_ext.cli import main  # noqa: E402
from sb3_ext.hyperparameters import parse_hyperparameters  # noqa: E402
from sb3_ext.per import PERDQN  # noqa: E402
from sb3_ext.tuning.results import BEST_FILE, PLOT_FILE, RECORDS_FILE, TABLE_FILE, read_records  # noqa: E402
from sb3_ext.tuning.space import read_space_file  # noqa: E402
from tests.ray.conftest import ray_processes  # noqa: E402

TIMESTEPS = 800
#: One of the two network choices cannot be built (a layer of width 'x'): those trials crash.
SPACE = [
    "learning_rate=loguniform(1e-4, 3e-3)",
    "policy_kwargs=choice([{'net_arch': [32]}, {'net_arch': [16, 'x']}])",
    "learning_starts=100",
    "buffer_size=5000",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("sweep") / "perdqn"
    before = ray_processes()
    args = [
        "tune",
        "PERDQN",
        "CartPole-v1",
        "--num-samples",
        "4",
        "--timesteps",
        str(TIMESTEPS),
        "--cpus",
        "2",
    ]
    args += ["--eval-points", "4", "--eval-episodes", "2", "--seed", "2", "--out", str(out), "--hp", *SPACE]
    try:
        code = main(args)
    finally:
        ray.shutdown()
    assert code == 0
    assert not ray.is_initialized() and ray_processes() <= before  # the local cluster is gone
    return out, (out / TABLE_FILE).read_text()


def test_sweep_writes_table_best_configuration_and_plot(sweep: tuple[Path, str]) -> None:
    out, table = sweep
    records, settings = read_records(out / RECORDS_FILE)
    assert len(records) == 4 and settings["num_samples"] == 4 and settings["scheduler"] == "asha"
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) == 4
    assert [row.split(" | ")[1] for row in rows] == [
        r.trial_id for r in sorted(records, key=lambda r: (r.score is None, -(r.score or 0), r.trial_id))
    ]
    evaluated = [r for r in records if r.returns]
    assert evaluated, table
    for record in evaluated:  # every report is an evaluation at a multiple of the evaluation period
        assert all(step % (TIMESTEPS // 4) == 0 for step in record.timesteps)
        assert 1e-4 <= record.hyperparameters["learning_rate"] <= 3e-3
    assert (out / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = max(evaluated, key=lambda r: r.score)
    best_text = (out / BEST_FILE).read_text()
    assert f"best evaluation mean return {best.score:.2f}" in best_text
    assert parse_hyperparameters(read_space_file(str(out / BEST_FILE), "--hp-file"), PERDQN) == {
        "learning_starts": 100,
        "buffer_size": 5000,
        **best.hyperparameters,
    }


def test_a_crashing_trial_is_reported_and_the_sweep_goes_on(sweep: tuple[Path, str]) -> None:
    out, table = sweep
    records, _ = read_records(out / RECORDS_FILE)
    crashed = [r for r in records if r.hyperparameters["policy_kwargs"] == {"net_arch": [16, "x"]}]
    healthy = [r for r in records if r.hyperparameters["policy_kwargs"] == {"net_arch": [32]}]
    # The sampler, seeded by --seed 2, draws the broken network once among the 4 trials.
    assert crashed and healthy, table
    assert all(r.error and not r.returns for r in crashed)
    assert all("Error" in r.error.split(":")[0] for r in crashed)
    assert all(not r.error and r.returns for r in healthy)
    statuses = [row.split(" | ")[2] for row in table.splitlines()[2:]]
    assert statuses.count("error") == len(crashed) and statuses[-len(crashed) :] == ["error"] * len(crashed)


def test_best_configuration_retrains_with_advrl_train(sweep: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = sweep
    run = tmp_path / "retrain"
    args = [
        "train",
        "PERDQN",
        "CartPole-v1",
        "--timesteps",
        "200",
        "--eval-points",
        "1",
        "--eval-episodes",
        "1",
    ]
    code = main([*args, "--no-progress-bar", "--out", str(run), "--hp-file", str(out / BEST_FILE)])
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    best = parse_hyperparameters(read_space_file(str(out / BEST_FILE), "--hp-file"), PERDQN)
    assert config["hyperparameters"] == best
    assert (run / "model.zip").exists()
