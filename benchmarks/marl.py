"""Multi-agent algorithms on the particle worlds, baselines in the same run.

Parts (``--parts``):

- ``box``: ``cooperative_v0`` with Box actions, N agents (``--n-agents 3 6``): MADDPG with MLP and
  with attention critics, independent DDPG (``critic="local"``) and SuperSuit parameter-sharing
  PPO (``examples/marl_ppo_parameter_sharing.py``), at equal environment steps.
- ``discrete``: ``cooperative_v0`` with Discrete actions: QMIX, VDN and independent Q-learning
  (``mixer="none"``) with MLP agents, and QMIX with GRU agents (``agent_network="gru"``).
- ``teams``: ``mixed_v0`` (and ``competitive_v0`` agent 0 alone) trained with MADDPG against a
  random opponent; the win rate is the share of evaluation episodes the trained side ends with
  the higher return.
- ``cost``: wall time of one MADDPG gradient step for 3 agents against one SB3 TD3 step with the
  same network sizes, paired rounds in one run.

Every learner is evaluated greedily on ``--eval-episodes`` episodes every ``--eval-every`` steps;
the tables report the final team return (mean +- std over seeds), the best, and the learning
curves are drawn with ``--plot``.

    python benchmarks/marl.py [--parts box discrete teams cost] [--seeds 0 1 2] [--steps 50000]
        [--n-agents 3 6] [--eval-every 5000] [--eval-episodes 10] [--learners NAME ...]

Runs are saved under ``benchmarks/results/marl/``; ``--from-results`` prints the tables again.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    save_learning_curves,
    spread,
)
from stable_baselines3 import TD3

from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0
from sb3_ext.marl import MADDPG, QMIX, evaluate_marl_policy

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "marl_ppo_parameter_sharing.py"
MAX_CYCLES = 25
NET_ARCH = [64, 64]
BOX_AGENTS = {
    "MADDPG (mlp critic)": {"critic": "mlp"},
    "MADDPG (attention critic)": {"critic": "attention"},
    "independent DDPG": {"critic": "local"},
}
DISCRETE_AGENTS = {
    "QMIX": {"mixer": "qmix"},
    "VDN": {"mixer": "vdn"},
    "independent DQN": {"mixer": "none"},
    # GRU agents learn on batch_size whole episodes once per episode: the same 64 replayed steps
    # per env step as the MLP agents' 64 transitions every step.
    "QMIX (GRU)": {"mixer": "qmix", "agent_network": "gru", "train_freq": MAX_CYCLES},
}
PPO = "parameter-sharing PPO"


def load_example():
    spec = importlib.util.spec_from_file_location("marl_ppo_parameter_sharing", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Evaluations:
    """A callback for :class:`~sb3_ext.marl.MultiAgentAlgorithm`: greedy team return every ``every`` steps."""

    def __init__(self, env: Any, every: int, episodes: int, seed: int):
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class Callback(BaseCallback):
            def _on_step(self) -> bool:
                if self.num_timesteps % every == 0:
                    mean, _ = evaluate_marl_policy(self.model, env, episodes, seed=seed)
                    outer.curve.append((self.num_timesteps, mean))
                return True

        self.curve: list[tuple[int, float]] = []
        self.callback = Callback()


def run_learner(
    make, env_kwargs: dict, args: argparse.Namespace, seed: int, module=cooperative_v0
) -> dict[str, Any]:
    env = module.parallel_env(max_cycles=MAX_CYCLES, **env_kwargs)
    evaluations = Evaluations(
        module.parallel_env(max_cycles=MAX_CYCLES, **env_kwargs),
        args.eval_every,
        args.eval_episodes,
        seed + 1000,
    )
    model = make(env)
    start = time.perf_counter()
    model.learn(args.steps, callback=evaluations.callback)
    return {
        "curve": evaluations.curve,
        "final": evaluations.curve[-1][1],
        "best": max(v for _, v in evaluations.curve),
        "seconds": time.perf_counter() - start,
        "model": model,
    }


def actions_label(part: str) -> str:
    """The action space of a part's env: ``"Discrete"`` for the discrete part, else ``"Box"``."""
    return "Discrete" if part == "discrete" else "Box"


def chosen(learners: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    """The learners of a part that ``--learners`` keeps (all of them by default)."""
    return {name: kw for name, kw in learners.items() if args.learners is None or name in args.learners}


def measure_box(results: Results, args: argparse.Namespace) -> None:
    example = load_example()
    for n in args.n_agents:
        for seed in args.seeds:
            for name, kwargs in chosen(BOX_AGENTS, args).items():
                make = lambda env, kw=kwargs, s=seed: MADDPG(  # noqa: E731
                    env, learning_starts=1_000, batch_size=256, net_arch=NET_ARCH, gamma=0.95, seed=s, **kw
                )
                run = run_learner(make, {"n_agents": n, "continuous_actions": True}, args, seed)
                run.pop("model")
                results.add({"part": "box", "n_agents": n, "agent": name, "seed": seed, **run})
            if args.learners is not None and PPO not in args.learners:
                continue
            # Parameter-sharing PPO as the users' example runs it (agent-steps = N x env steps).
            ppo_argv = ["--env", "cooperative", "--n-agents", str(n), "--timesteps", str(args.steps * n),
                        "--seed", str(seed), "--max-cycles", str(MAX_CYCLES), "--eval-episodes", str(args.eval_episodes)]  # fmt: skip
            start = time.perf_counter()
            final = float(example.main(ppo_argv)["ppo"])
            results.add({"part": "box", "n_agents": n, "agent": PPO, "seed": seed,
                         "curve": [(args.steps, final)], "final": final, "best": final,
                         "seconds": time.perf_counter() - start})  # fmt: skip


def measure_discrete(results: Results, args: argparse.Namespace) -> None:
    for seed in args.seeds:
        for name, kwargs in chosen(DISCRETE_AGENTS, args).items():
            make = lambda env, kw=kwargs, s=seed: QMIX(  # noqa: E731
                env, learning_starts=1_000, batch_size=64, net_arch=NET_ARCH, gamma=0.95,
                target_update_interval=500, exploration_fraction=0.3, seed=s, **kw,
            )  # fmt: skip
            run = run_learner(make, {"n_agents": 3, "continuous_actions": False}, args, seed)
            run.pop("model")
            results.add({"part": "discrete", "n_agents": 3, "agent": name, "seed": seed, **run})


def win_rate(model: MADDPG, module, n_agents: int, episodes: int, seed: int) -> float:
    env = module.parallel_env(max_cycles=MAX_CYCLES, n_agents=n_agents)
    _, _, per_agent = evaluate_marl_policy(model, env, episodes, seed=seed, return_episode_rewards=True)
    mine = np.mean([per_agent[a] for a in model.agents], axis=0)
    theirs = np.mean([per_agent[a] for a in per_agent if a not in model.agent_index], axis=0)
    return float(np.mean(mine > theirs))


def measure_teams(results: Results, args: argparse.Namespace) -> None:
    for module, n in ((mixed_v0, 4), (competitive_v0, 2)):
        env = module.parallel_env(n_agents=n)
        side = [a for a, team in env.teams.items() if team == "red"] or env.possible_agents[:1]
        for seed in args.seeds:
            make = lambda e, s=seed, a=side: MADDPG(  # noqa: E731
                e, agents=a, learning_starts=1_000, batch_size=256, net_arch=NET_ARCH, gamma=0.95, seed=s
            )
            run = run_learner(make, {"n_agents": n}, args, seed, module)
            model = run.pop("model")
            untrained = MADDPG(module.parallel_env(n_agents=n), agents=side, seed=seed)
            run["win_rate"] = win_rate(model, module, n, args.eval_episodes * 3, seed + 2000)
            run["untrained_win_rate"] = win_rate(untrained, module, n, args.eval_episodes * 3, seed + 2000)
            results.add(
                {
                    "part": "teams",
                    "env": module.__name__.rsplit(".", 1)[1],
                    "n_agents": n,
                    "agent": "MADDPG vs random",
                    "seed": seed,
                    **run,
                }
            )


def measure_cost(results: Results, args: argparse.Namespace, rounds: int = 7, steps: int = 50) -> None:
    """One MADDPG gradient step (3 agents, MLP critics) vs one TD3 step, same hidden layers and batch."""
    env = cooperative_v0.parallel_env(n_agents=3, max_cycles=MAX_CYCLES)
    maddpg = MADDPG(env, learning_starts=0, batch_size=256, net_arch=NET_ARCH, seed=0).learn(600)
    single = gym.make("Pendulum-v1")
    td3 = TD3(
        "MlpPolicy",
        single,
        learning_starts=0,
        batch_size=256,
        policy_delay=1,
        policy_kwargs={"net_arch": NET_ARCH},
        seed=0,
    )
    td3.learn(600)
    ratios = []
    for _ in range(rounds):
        start = time.perf_counter()
        maddpg.train(steps, 256)
        ours = (time.perf_counter() - start) / steps
        start = time.perf_counter()
        td3.train(steps, 256)
        theirs = (time.perf_counter() - start) / steps
        ratios.append(ours / theirs)
        results.add({"part": "cost", "maddpg_ms": 1e3 * ours, "td3_ms": 1e3 * theirs, "ratio": ours / theirs})


def tables(record: dict[str, Any]) -> str:
    runs, out = record["runs"], []
    learning = [r for r in runs if r["part"] in ("box", "discrete")]
    if learning:
        rows = []
        for key in sorted(
            dict.fromkeys((r["part"], r["n_agents"], r["agent"]) for r in learning), key=lambda k: k[:2]
        ):
            mine = [r for r in learning if (r["part"], r["n_agents"], r["agent"]) == key]
            rows.append([actions_label(key[0]), key[1], key[2], len(mine),
                         mean_std([r["final"] for r in mine], ".1f"), mean_std([r["best"] for r in mine], ".1f"),
                         f"{np.mean([r['seconds'] for r in mine]):.0f}"])  # fmt: skip
        out.append(
            markdown_table(
                ("actions", "agents", "learner", "seeds", "final team return", "best", "seconds"),
                rows,
                "lrlrrrr",
            )
        )
    paired = paired_rows(learning)
    if paired:
        out.append(
            markdown_table(
                ("actions", "agents", "pair", "final team return, seed by seed", "seeds the first is higher",
                 "mean difference"),
                paired,
                "lrlrrr",
            )
        )  # fmt: skip
    teams = [r for r in runs if r["part"] == "teams"]
    if teams:
        rows = []
        for env in dict.fromkeys(r["env"] for r in teams):
            mine = [r for r in teams if r["env"] == env]
            rows.append([env, mine[0]["n_agents"], len(mine), mean_std([r["win_rate"] for r in mine], ".2f"),
                         mean_std([r["untrained_win_rate"] for r in mine], ".2f")])  # fmt: skip
        out.append(
            markdown_table(
                ("env", "agents", "seeds", "win rate vs random", "untrained, same opponent"), rows, "lrrrr"
            )
        )
    cost = [r for r in runs if r["part"] == "cost"]
    if cost:
        low, median, high = spread([r["ratio"] for r in cost])
        out.append(
            markdown_table(
                ("MADDPG step, 3 agents (ms)", "TD3 step (ms)", "ratio min / median / max", "rounds"),
                [
                    [
                        f"{np.median([r['maddpg_ms'] for r in cost]):.2f}",
                        f"{np.median([r['td3_ms'] for r in cost]):.2f}",
                        f"{low:.2f} / {median:.2f} / {high:.2f}",
                        len(cost),
                    ]
                ],  # fmt: skip
                "rrrr",
            )
        )
    return "\n\n".join(out)


#: (first, second) learners compared seed by seed on the final team return, where both ran.
PAIRS = (
    ("MADDPG (mlp critic)", "independent DDPG"),
    ("MADDPG (attention critic)", "independent DDPG"),
    ("MADDPG (attention critic)", "MADDPG (mlp critic)"),
    ("QMIX", "VDN"),
    ("VDN", "independent DQN"),
    ("QMIX", "independent DQN"),
)


def paired_rows(learning: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per pair of :data:`PAIRS` and (actions, agents): the final team returns of the same
    seeds side by side, on how many seeds the first is higher, and the mean difference."""
    rows = []
    for part, n_agents in sorted(dict.fromkeys((r["part"], r["n_agents"]) for r in learning)):
        final = {
            (r["agent"], r["seed"]): r["final"]
            for r in learning
            if (r["part"], r["n_agents"]) == (part, n_agents)
        }
        for first, second in PAIRS:
            seeds = sorted(s for a, s in final if a == first and (second, s) in final)
            if not seeds:
                continue
            pairs = [(final[(first, s)], final[(second, s)]) for s in seeds]
            rows.append([actions_label(part), n_agents, f"{first} vs {second}",
                         ", ".join(f"{a:.1f} vs {b:.1f}" for a, b in pairs),
                         f"{sum(a > b for a, b in pairs)}/{len(pairs)}",
                         f"{np.mean([a - b for a, b in pairs]):+.2f}"])  # fmt: skip
    return rows


def plot(record: dict[str, Any], path) -> None:
    order = {"box": 0, "discrete": 1, "teams": 2}
    runs = sorted(
        (r for r in record["runs"] if r["part"] in order), key=lambda r: (order[r["part"]], r["n_agents"])
    )
    panels: dict[str, dict[str, list]] = {}
    for r in runs:
        panel = f"{r.get('env', 'cooperative_v0')} {actions_label(r['part'])}, {r['n_agents']} agents"
        panels.setdefault(panel, {}).setdefault(r["agent"], []).append(r["curve"])
    if panels:
        save_learning_curves(path, panels, ylabel="greedy team return", title="mean +- std over seeds")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["box", "discrete", "teams", "cost"],
        default=["box", "discrete", "teams", "cost"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per learner")
    parser.add_argument("--n-agents", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--learners",
        nargs="+",
        choices=[*BOX_AGENTS, PPO, *DISCRETE_AGENTS],
        help="run only these learners of the box and discrete parts (default: all)",
        metavar="NAME",
    )
    add_results_argument(parser)
    add_plot_argument(parser, "marl")
    args = parser.parse_args()
    th.set_num_threads(1)

    def measure(results: Results) -> None:
        for part in args.parts:
            {"box": measure_box, "discrete": measure_discrete, "teams": measure_teams, "cost": measure_cost}[
                part
            ](results, args)

    record = measure_or_load("marl", args, measure)
    print(tables(record))
    plot(record, args.plot)


if __name__ == "__main__":
    main()
