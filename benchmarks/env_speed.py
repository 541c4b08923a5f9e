"""Environment steps per second, with Gymnasium's classic-control envs measured in the same run.

Every env is made with ``gym.make`` (so the same wrappers, time limit included, are on both sides)
and stepped with pre-sampled actions, resetting at episode ends.

    python benchmarks/env_speed.py [--steps 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import gym_advrl

#: Our env -> the Gymnasium env it must keep pace with (at least 0.9x its steps/s).
COUNTERPARTS = {
    "AdvRL/Pendulum-v0": "Pendulum-v1",
    "AdvRL/ContinuousCartPole-v0": "CartPole-v1",
}


def steps_per_second(env_id: str, n_steps: int, repeats: int, seed: int = 0) -> float:
    """Best of ``repeats`` timings (the least disturbed by other processes)."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(n_steps)]
    if env_id == "CartPole-v1":
        actions = [int(a) for a in actions]
    best = 0.0
    for repeat in range(repeats):
        env.reset(seed=seed + repeat)
        start = time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        best = max(best, n_steps / (time.perf_counter() - start))
    env.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    ids = [spec[0] for spec in gym_advrl.ENV_SPECS] + sorted(
        env_id for env_id in gym.registry if env_id.startswith("AdvRL/") and env_id not in dict((s[0], 0) for s in gym_advrl.ENV_SPECS)
    )
    reference = {ref: steps_per_second(ref, args.steps, args.repeats) for ref in COUNTERPARTS.values()}
    print(f"steps per second, best of {args.repeats} x {args.steps} steps, gym.make wrappers on both sides\n")
    print("| env | steps/s | Gymnasium counterpart | its steps/s | ratio |")
    print("|---|---:|---|---:|---:|")
    failures = []
    for env_id in ids:
        ours = steps_per_second(env_id, args.steps, args.repeats)
        ref_id = COUNTERPARTS.get(env_id)
        if ref_id is None:
            print(f"| `{env_id}` | {ours:,.0f} | | | |")
            continue
        ratio = ours / reference[ref_id]
        print(f"| `{env_id}` | {ours:,.0f} | `{ref_id}` | {reference[ref_id]:,.0f} | {ratio:.2f}x |")
        if ratio < 0.9:
            failures.append(f"{env_id}: {ratio:.2f}x of {ref_id}")
    if failures:
        print("\nbelow the 0.9x target: " + "; ".join(failures))
    else:
        print("\nall counterparts within the 0.9x target")


if __name__ == "__main__":
    main()
