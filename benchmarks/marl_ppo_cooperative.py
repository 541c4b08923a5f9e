"""SuperSuit + SB3 PPO with parameter sharing vs a random policy on ``cooperative_v0``.

    python benchmarks/marl_ppo_cooperative.py                        # 3 seeds x 300k agent-steps
    python benchmarks/marl_ppo_cooperative.py --seeds 0 --timesteps 50000

Each seed runs ``examples/marl_ppo_parameter_sharing.py`` (the same code a user copies): PPO
trains one policy shared by the 3 agents, then the trained policy (deterministic actions) and
uniformly random actions are evaluated on the same 10 held-out episodes of 200 steps. The table
shows the mean team return (per step: the shared team reward; summed over the episode). Runs are
saved under ``benchmarks/results/marl_ppo_cooperative/``; ``--from-results`` prints their table again
and draws the plot (``--plot``): team return of PPO and of random actions, mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    save_bar_plot,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "marl_ppo_parameter_sharing.py"


def load_example():
    spec = importlib.util.spec_from_file_location("marl_ppo_parameter_sharing", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=300_000, help="agent-steps per seed")
    parser.add_argument("--n-agents", type=int, default=3)
    parser.add_argument("--discrete", action="store_true")
    add_results_argument(parser)
    add_plot_argument(parser, "marl_ppo_cooperative")
    args = parser.parse_args()

    def measure(results: Results) -> None:
        example = load_example()
        for seed in args.seeds:
            argv = [
                "--env",
                "cooperative",
                "--n-agents",
                str(args.n_agents),
                "--timesteps",
                str(args.timesteps),
            ]
            argv += ["--seed", str(seed), "--eval-episodes", "10"] + (["--discrete"] if args.discrete else [])
            results.add({"seed": seed, **example.main(argv)})

    record = measure_or_load("marl_ppo_cooperative", args, measure)
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    args, runs = record["args"], record["runs"]
    save_bar_plot(
        path,
        {
            f"cooperative_v0, {args['n_agents']} agents": {
                "PPO, parameter sharing (deterministic)": [r["ppo"] for r in runs],
                "uniformly random actions": [r["random"] for r in runs],
            }
        },
        title=f"{args['timesteps']:,} agent-steps per seed, {len(runs)} seeds (dots: seeds)",
        ylabel="team return, 200-step episode (higher is better)",
    )


def table(record: dict[str, Any]) -> str:
    args, runs = record["args"], record["runs"]
    actions = "Discrete(5)" if args["discrete"] else "Box(-1, 1, (2,))"
    rows = [[r["seed"], f"{r['ppo']:.1f}", f"{r['random']:.1f}", f"{r['train_seconds']:.0f}"] for r in runs]
    ppo, random = [r["ppo"] for r in runs], [r["random"] for r in runs]
    rows.append(["mean +- std", f"**{mean_std(ppo, '.1f')}**", mean_std(random, ".1f"), ""])
    columns = ("seed", "PPO (parameter sharing)", "random policy", "training time (s)")
    return (
        f"\ncooperative_v0, {args['n_agents']} agents, {actions} actions, {args['timesteps']:,} agent-steps per seed\n\n"
        + markdown_table(columns, rows)
    )


if __name__ == "__main__":
    main()
