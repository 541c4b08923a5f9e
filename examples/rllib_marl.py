"""Multi-agent RLlib PPO on a ``gym_advrl.marl`` env: one policy shared by every agent, or one per team.

    pip install -e ".[ray]"
    python examples/rllib_marl.py --env mixed_v0 --policies per-team --timesteps 40000
    python examples/rllib_marl.py --env cooperative_v0 --policies shared --timesteps 40000

``register_envs()`` registers each PettingZoo parallel env with Ray as an RLlib
``ParallelPettingZooEnv`` under its module name (``"gym_advrl.marl.mixed_v0"``).
``policy_per_team`` maps the agents to their team's policy (``red``/``blue`` in ``mixed_v0``; every
agent its own in ``competitive_v0``); ``shared_policy`` maps them all to one. The script prints each
policy's mean episode return over the first and the last training iteration.
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig  # noqa: E402
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402
from tqdm import tqdm  # noqa: E402

from gym_advrl.rllib import policy_per_team, register_envs, shared_policy  # noqa: E402

ENVS = ("cooperative_v0", "competitive_v0", "mixed_v0")


def module_returns(result: dict) -> dict[str, float]:
    return dict(result["env_runners"].get("module_episode_returns_mean", {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=ENVS, default="mixed_v0")
    parser.add_argument("--policies", choices=("shared", "per-team"), default="per-team")
    parser.add_argument("--n-agents", type=int, default=3)
    parser.add_argument("--max-cycles", type=int, default=50)
    parser.add_argument("--timesteps", type=int, default=40_000, help="environment steps in total")
    parser.add_argument("--env-runners", type=int, default=1, help="remote env-runner processes")
    parser.add_argument("--batch-size", type=int, default=1000, help="environment steps per iteration")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    module_name = f"gym_advrl.marl.{args.env}"
    env_config = {"n_agents": args.n_agents, "max_cycles": args.max_cycles}
    if args.policies == "shared":
        policies, mapping = shared_policy()
    else:
        policies, mapping = policy_per_team(module_name, env_config)

    ray.init(num_cpus=args.env_runners + 1, include_dashboard=False, log_to_driver=False)
    try:
        register_envs()
        config = (
            PPOConfig()
            .environment(module_name, env_config=env_config)
            .env_runners(num_env_runners=args.env_runners, num_cpus_per_env_runner=1)
            .multi_agent(policies=set(policies), policy_mapping_fn=mapping)
            .rl_module(
                rl_module_spec=MultiRLModuleSpec(
                    rl_module_specs={policy: RLModuleSpec() for policy in policies}
                ),
                model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]),
            )
            .training(
                train_batch_size_per_learner=args.batch_size,
                minibatch_size=min(128, args.batch_size),
                num_epochs=4,
                lr=3e-4,
            )
            .debugging(seed=args.seed)
        )
        algo = config.build_algo()
        iterations = max(1, math.ceil(args.timesteps / args.batch_size))
        history = []
        with tqdm(total=iterations * args.batch_size, unit="step", desc=f"PPO on {args.env}") as bar:
            for _ in range(iterations):
                history.append(module_returns(algo.train()))
                bar.update(args.batch_size)
        algo.stop()
    finally:
        ray.shutdown()

    agents_of = {policy: [] for policy in policies}
    probe = __import__(module_name, fromlist=["parallel_env"]).parallel_env(**env_config)
    for agent in probe.possible_agents:
        agents_of[mapping(agent, None)].append(agent)
    print(f"\n{args.env}, {args.policies} policies, {iterations} iteration(s) of {args.batch_size} steps\n")
    print("| policy | agents | first iteration return | last iteration return |")
    print("|---|---|---|---|")
    for policy in policies:
        first = next((h[policy] for h in history if policy in h), None)
        last = next((h[policy] for h in reversed(history) if policy in h), None)
        cells = ["no episode finished" if v is None else f"{v:.2f}" for v in (first, last)]
        print(f"| {policy} | {', '.join(agents_of[policy])} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
