"""Parallel-API steps per second of the particle envs, with MPE2's simple_spread_v3 in the same run.

    python benchmarks/marl_speed.py                      # 3 and 10 agents, both action modes
    python benchmarks/marl_speed.py --agents 3 --seconds 1

Every env runs ``max_cycles`` (default 25, MPE's default) steps per episode with random actions
drawn beforehand, so the timing covers ``step`` (and the resets between episodes) only. Each
figure is the median of ``--repeats`` runs of ``--seconds`` each. MPE2 (``pip install mpe2``) is
skipped, and said so, when it is not installed. Measurements are saved under
``benchmarks/results/marl_speed/``; ``--from-results`` prints their table again. The plot
(``--plot``) shows each env's ratio to MPE2: min / median / max over the runs (run i of both
uses seed i).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    save_ratio_plot,
)
from pettingzoo import ParallelEnv

from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0

OURS = {"cooperative_v0": cooperative_v0, "competitive_v0": competitive_v0, "mixed_v0": mixed_v0}


def steps_per_second(make_env: Callable[[], ParallelEnv], seconds: float, seed: int = 0) -> float:
    env = make_env()
    env.reset(seed=seed)
    agents = list(env.possible_agents)
    for i, agent in enumerate(agents):
        env.action_space(agent).seed(seed + i)
    pool = [{a: env.action_space(a).sample() for a in agents} for _ in range(256)]
    steps, start = 0, time.perf_counter()
    while True:
        for actions in pool:
            if not env.agents:
                env.reset()
            env.step({a: actions[a] for a in env.agents})
        steps += len(pool)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed


def mpe2_simple_spread() -> object | None:
    try:
        from mpe2 import simple_spread_v3
    except ImportError:
        return None
    return simple_spread_v3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--max-cycles", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    add_results_argument(parser)
    add_plot_argument(parser, "marl_speed")
    args = parser.parse_args()

    def measure(results: Results) -> None:
        simple_spread = mpe2_simple_spread()
        results.describe(mpe2_installed=simple_spread is not None, numpy=np.__version__)
        for n in args.agents:
            for continuous in (False, True):
                kwargs = {"continuous_actions": continuous, "max_cycles": args.max_cycles}
                candidates: dict[str, Callable[[], ParallelEnv]] = {
                    name: functools.partial(mod.parallel_env, n_agents=n, **kwargs)
                    for name, mod in OURS.items()
                }
                if simple_spread is not None:
                    candidates["MPE2 simple_spread_v3"] = functools.partial(
                        simple_spread.parallel_env, N=n, **kwargs
                    )
                for name, make in candidates.items():
                    rates = [steps_per_second(make, args.seconds, seed) for seed in range(args.repeats)]
                    rate = statistics.median(rates)
                    actions = "Box" if continuous else "Discrete"
                    results.add(
                        {
                            "env": name,
                            "agents": n,
                            "actions": actions,
                            "steps_per_second": rate,
                            "runs": rates,
                        }
                    )
                    print(f"  measured {name} n={n} {actions}: {rate:,.0f} steps/s", flush=True)

    record = measure_or_load("marl_speed", args, measure)
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    """Ratio to MPE2 of each env, run by run (run i of both with seed i)."""
    runs = record["runs"]
    baseline = {
        (r["agents"], r["actions"]): r.get("runs", [r["steps_per_second"]])
        for r in runs
        if r["env"].startswith("MPE2")
    }
    ratios = {
        f"{r['env']}, {r['agents']} agents, {r['actions']}": [
            ours / theirs
            for ours, theirs in zip(
                r.get("runs", [r["steps_per_second"]]), baseline[(r["agents"], r["actions"])], strict=True
            )
        ]
        for r in runs
        if not r["env"].startswith("MPE2") and (r["agents"], r["actions"]) in baseline
    }
    if not ratios:
        return
    save_ratio_plot(
        path,
        ratios,
        title=f"parallel steps/s relative to MPE2 simple_spread_v3 ({record['args']['repeats']} runs of "
        f"{record['args']['seconds']:g} s each)",
        xlabel="steps/s ratio, ours / MPE2 (bar: median run, whiskers: min and max)",
    )


def table(record: dict[str, Any]) -> str:
    args, settings, runs = record["args"], record["settings"], record["runs"]
    baseline = {
        (r["agents"], r["actions"]): r["steps_per_second"] for r in runs if r["env"].startswith("MPE2")
    }
    rows = []
    for r in runs:
        name, n, act, rate = r["env"], r["agents"], r["actions"], r["steps_per_second"]
        ratio = f"{rate / baseline[(n, act)]:.1f}x" if (n, act) in baseline else "n/a"
        label = name if name.startswith("MPE2") else f"`{name}`"
        rows.append([label, n, act, f"{rate:,.0f}", f"{rate * n:,.0f}", ratio])
    columns = ("env", "agents", "actions", "parallel steps/s", "agent-steps/s", "vs MPE2 simple_spread_v3")
    lines = ["", markdown_table(columns, rows)]
    if not settings["mpe2_installed"]:
        lines.append("\nMPE2 is not installed (pip install mpe2): no baseline measured.")
    lines.append(
        f"\nmax_cycles={args['max_cycles']}, median of {args['repeats']} runs of {args['seconds']:g} s, numpy {settings['numpy']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
