"""How ``advrl tune`` scales: one sweep run with 1 and with 2 concurrent trials, and on a two-node cluster.

    python benchmarks/tune_scaling.py --plot docs/images/tune_scaling.png
    python benchmarks/tune_scaling.py --repeats 1 --timesteps 2000   # a quick look

The same sweep (``--num-samples`` trials of ``--algo`` on ``--env``, FIFO scheduler so that every
trial trains all its steps, trials sampled from the same seed so every setup runs the same 8
configurations) is run as a user runs it, ``advrl tune`` in its own process, timed from start to
exit, in three setups:

* ``local, 1 concurrent``: a local Ray cluster of 2 CPUs, ``--max-concurrent 1`` (the baseline);
* ``local, 2 concurrent``: the same cluster, two trials at a time;
* ``two nodes (loopback)``: ``ray start --head`` and ``ray start --address`` on 127.0.0.1, one CPU
  each, and ``advrl tune --address``; the cluster's start and stop are not timed.

Beside them, one trial's training without Ray (the very code a trial runs, in this process) gives
the per-trial overhead of Ray: (sweep wall time with 1 concurrent trial - trials x plain trial) /
trials, which holds the start of the local cluster and of the trial workers (a finished trial's
worker runs the next one) and Tune's bookkeeping. The
load average of the machine is recorded before and after each measurement, since on a shared
machine it decides the figures. Results are saved under ``benchmarks/results/tune_scaling/``;
``--from-results`` prints the table again; ``--plot`` draws the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    save_bar_plot,
)

SETUPS = ("local, 1 concurrent", "local, 2 concurrent", "two nodes (loopback)")
BASELINE = SETUPS[0]
PLAIN = "one trial without Ray"


def sweep_command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sb3_ext.cli",
        "tune",
        args.algo,
        args.env,
        "--num-samples",
        str(args.num_samples),
        "--timesteps",
        str(args.timesteps),
        "--scheduler",
        "fifo",
        "--eval-points",
        str(args.eval_points),
        "--eval-episodes",
        str(args.eval_episodes),
        "--seed",
        "0",
        "--out",
        str(out),
        "--hp",
        "learning_rate=loguniform(1e-4, 1e-2)",
        *args.fixed,
    ]


def timed_sweep(command: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one ``advrl tune`` process; its wall time, each trial's Tune-reported time and node."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=env)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"advrl tune failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    trials = json.loads((out / "trials.json").read_text())["trials"]
    return {
        "wall_s": wall,
        "trial_s": [trial["wall_s"] for trial in trials],
        "nodes": len({trial["node_id"] for trial in trials}),
        "errors": sum(1 for trial in trials if trial["error"]),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def plain_trial(args: argparse.Namespace) -> dict[str, Any]:
    """One trial's training without Ray, with the sweep's evaluations: its wall time."""
    import gymnasium as gym

    from sb3_ext.cli import default_policy, resolve_algorithm
    from sb3_ext.hyperparameters import parse_hyperparameters
    from sb3_ext.tuning.sweep import SweepSettings, train_trial

    cls = resolve_algorithm(args.algo)
    settings = SweepSettings(
        algo=cls.__name__,
        env_id=args.env,
        policy=default_policy(cls, gym.make(args.env).observation_space),
        timesteps=args.timesteps,
        eval_freq=args.timesteps // args.eval_points,
        eval_episodes=args.eval_episodes,
        seed=0,
        fixed=parse_hyperparameters(args.fixed, cls),
    )
    import stable_baselines3  # noqa: F401  (imported before timing, as in a trial's warm worker)
    import torch  # noqa: F401

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    train_trial({"learning_rate": 1e-3}, settings, report=lambda metrics: None)
    return {
        "wall_s": time.perf_counter() - start,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def measure(args: argparse.Namespace, results: Results) -> None:
    from sb3_ext.tuning.cluster import JOIN_ENV, loopback_cluster

    results.describe(cpus=os.cpu_count())
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            for setup in SETUPS:
                if setup == SETUPS[2] and args.no_two_nodes:
                    continue
                out = Path(scratch) / f"{repeat}-{SETUPS.index(setup)}"
                command = sweep_command(args, out)
                if setup == SETUPS[2]:
                    with loopback_cluster(nodes=2, cpus_per_node=1) as address:
                        run = timed_sweep(
                            [*command, "--address", address], out, env={**os.environ, **JOIN_ENV}
                        )
                else:
                    concurrent = "1" if setup == BASELINE else "2"
                    run = timed_sweep([*command, "--cpus", "2", "--max-concurrent", concurrent], out)
                results.add({"repeat": repeat, "setup": setup, **run})
                print(f"repeat {repeat}, {setup}: {run['wall_s']:.1f} s", file=sys.stderr, flush=True)
        run = plain_trial(args)
        results.add({"repeat": repeat, "setup": PLAIN, **run})
        print(f"repeat {repeat}, {PLAIN}: {run['wall_s']:.1f} s", file=sys.stderr, flush=True)


def tables(record: dict[str, Any]) -> str:
    args = record["args"]
    trials = args["num_samples"]
    runs = record["runs"]
    wall = {setup: [r["wall_s"] for r in runs if r["setup"] == setup] for setup in (*SETUPS, PLAIN)}
    by_repeat = {(r["repeat"], r["setup"]): r for r in runs}
    repeats = sorted({r["repeat"] for r in runs})

    def ratios(setup: str) -> list[float]:
        return [
            by_repeat[(k, BASELINE)]["wall_s"] / by_repeat[(k, setup)]["wall_s"]
            for k in repeats
            if (k, BASELINE) in by_repeat and (k, setup) in by_repeat
        ]

    def mean_std(values: list[float], spec: str) -> str:
        return f"{np.mean(values):{spec}} +- {np.std(values):{spec}}" if values else "-"

    rows = []
    for setup in SETUPS:
        setup_runs = [r for r in runs if r["setup"] == setup]
        if not setup_runs:
            continue
        per_trial = [t for r in setup_runs for t in r["trial_s"]]
        rows.append(
            [
                setup,
                mean_std(wall[setup], ".1f"),
                mean_std(ratios(setup), ".2f") + "x",
                mean_std(per_trial, ".1f"),
                "/".join(str(r["nodes"]) for r in setup_runs),
                "/".join(str(r["errors"]) for r in setup_runs),
                mean_std([r["load_before"] for r in setup_runs], ".1f"),
            ]
        )
    plain = [r for r in runs if r["setup"] == PLAIN]
    if plain:
        rows.append(
            [
                PLAIN,
                mean_std(wall[PLAIN], ".1f"),
                "",
                "",
                "",
                "",
                mean_std([r["load_before"] for r in plain], ".1f"),
            ]
        )
    table = markdown_table(
        [
            "setup",
            f"wall time of {trials} trials (s)",
            "speed-up vs 1 concurrent",
            "trial time in Tune (s)",
            "nodes used",
            "crashed",
            "load avg (1 min) before",
        ],
        rows,
        align="lrrrlll",
    )
    paired = [k for k in repeats if (k, BASELINE) in by_repeat and (k, PLAIN) in by_repeat]
    baseline = [by_repeat[(k, BASELINE)] for k in paired]
    plain_s = [by_repeat[(k, PLAIN)]["wall_s"] for k in paired]
    outside = [run["wall_s"] - sum(run["trial_s"]) for run in baseline]
    amortized = [(run["wall_s"] - trials * p) / trials for run, p in zip(baseline, plain_s, strict=True)]
    in_trial = [float(np.mean(run["trial_s"])) - p for run, p in zip(baseline, plain_s, strict=True)]
    lines = [
        f"{args['algo']} on {args['env']}: {trials} trials of {args['timesteps']:,} steps, "
        f"{args['eval_points']} evaluations of {args['eval_episodes']} episodes each, FIFO scheduler; "
        f"{len(repeats)} repeat(s), mean +- std; {record.get('settings', {}).get('cpus', '?')} CPUs",
        "",
        table,
        "",
    ]
    if paired:
        lines += [
            f"Ray's overhead with 1 concurrent trial: {mean_std(outside, '.1f')} s of the sweep's wall time lie outside "
            f"the trials' own time (Tune's trial times): the local cluster's start and stop, the trial workers' "
            f"start, Tune's bookkeeping. Against {trials} x one trial without Ray ({mean_std(plain_s, '.1f')} s each), "
            f"Ray adds {mean_std(amortized, '.1f')} s per trial; inside a trial (Tune's trial time - the trial "
            f"without Ray) {mean_std(in_trial, '.1f')} s.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", default="PERDQN")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=5000)
    parser.add_argument("--eval-points", type=int, default=4)
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--fixed",
        nargs="*",
        default=["learning_starts=500", "buffer_size=10000"],
        metavar="KEY=VALUE",
        help="hyperparameters every trial shares",
    )
    parser.add_argument("--no-two-nodes", action="store_true", help="leave out the two-node cluster")
    add_results_argument(parser)
    add_plot_argument(parser, "tune_scaling")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    record = measure_or_load("tune_scaling", args, lambda results: measure(args, results))
    print(tables(record))
    runs = record["runs"]
    groups = {
        setup: {"wall time": [r["wall_s"] for r in runs if r["setup"] == setup]}
        for setup in SETUPS
        if any(r["setup"] == setup for r in runs)
    }
    plain = [r["wall_s"] * record["args"]["num_samples"] for r in runs if r["setup"] == PLAIN]
    lines = (
        {f"{record['args']['num_samples']} x one trial without Ray": float(np.mean(plain))} if plain else None
    )
    save_bar_plot(
        args.plot,
        groups,
        title=f"advrl tune: {record['args']['num_samples']} trials of {record['args']['algo']} on {record['args']['env']}",
        ylabel="wall time (s)",
        lines=lines,
    )


if __name__ == "__main__":
    main()
