"""RLlib PPO on an ``AdvRL/`` env, sampled by remote env runners (separate Ray worker processes).

    pip install -e ".[ray,sb3]"
    python examples/rllib_ppo.py --env AdvRL/GridWorld-v0 --env-runners 2 --timesteps 20000

Remote env runners do not import ``gym_advrl``; ``register_envs()`` puts every ``AdvRL/`` id into
Ray's env registry, which every worker reads, so the plain id works there. The script compares the
mean episode return of the last training iteration with that of uniformly random actions.
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig  # noqa: E402
from tqdm import tqdm  # noqa: E402

from gym_advrl.rllib import register_envs  # noqa: E402
from sb3_ext.common.evaluation import random_policy_returns  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="AdvRL/GridWorld-v0")
    parser.add_argument("--timesteps", type=int, default=20_000, help="environment steps in total")
    parser.add_argument("--env-runners", type=int, default=2, help="remote env-runner processes")
    parser.add_argument("--batch-size", type=int, default=1000, help="environment steps per iteration")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ray.init(num_cpus=args.env_runners + 1, include_dashboard=False, log_to_driver=False)
    try:
        register_envs()
        config = (
            PPOConfig()
            .environment(args.env)
            .env_runners(num_env_runners=args.env_runners, num_cpus_per_env_runner=1)
            .training(
                train_batch_size_per_learner=args.batch_size,
                minibatch_size=min(128, args.batch_size),
                num_epochs=4,
                lr=3e-4,
            )
            .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
            .debugging(seed=args.seed)
        )
        algo = config.build_algo()
        iterations = max(1, math.ceil(args.timesteps / args.batch_size))
        with tqdm(total=iterations * args.batch_size, unit="step", desc=f"PPO on {args.env}") as bar:
            for _ in range(iterations):
                result = algo.train()
                bar.update(args.batch_size)
                bar.set_postfix(
                    episode_return=f"{result['env_runners'].get('episode_return_mean', float('nan')):.2f}"
                )
        trained = result["env_runners"].get("episode_return_mean")
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        algo.stop()
    finally:
        ray.shutdown()

    random = random_policy_returns(args.env, 20, seed=args.seed + 1000)
    print(f"\n{args.env}: {sampled:,} steps sampled by {args.env_runners} remote env runner(s)\n")
    print("| policy | mean episode return |")
    print("|---|---|")
    print(f"| random | {random.mean():.2f} |")
    if trained is None:
        print("| PPO (last iteration's episodes) | no episode finished yet |")
    else:
        print(f"| PPO (last iteration's episodes) | {trained:.2f} |")


if __name__ == "__main__":
    main()
