"""Native vector envs (``gym.make_vec``) against Gymnasium's ``SyncVectorEnv`` of the same env.

For every ``AdvRL/`` id with a native vector env, instance-steps per second (``num_envs`` times
vector steps per second) at each ``--sizes`` value, natively and under ``SyncVectorEnv`` of
``gym.make`` envs, with pre-sampled actions and autoreset on both sides. In the same passes:
Gymnasium's own ``CartPoleVectorEnv`` (the reference for ``ContinuousCartPole-v0`` and
``Pendulum-v0``) and ``Pendulum-v1`` under ``SyncVectorEnv``. The passes interleave (every repeat
times every configuration once), so load changes hit all alike; tables show min / median / max
over the passes, ratios are taken pass by pass. The copy bandwidth of the machine (``np.copyto``
of 64 MB) is measured too, to state how close the fastest envs come to a memory-bandwidth bound.

    python benchmarks/vector_speed.py [--sizes 1 16 256 1024 4096] [--repeats 5] [--plot PNG]
    python benchmarks/vector_speed.py --ppo [--ppo-seeds 3]    # PPO wall time, 64 native vs DummyVecEnv(64)

``--ppo`` trains SB3 PPO on ``AdvRL/Pendulum-v0`` with 64 envs, through ``GymnasiumVecEnv`` on the
native vector env and on ``DummyVecEnv`` of 64 single envs, same hyperparameters and seeds, and
reports the wall time and env steps until the mean return of the last 64 finished episodes
passes -400 (within ``--ppo-steps``). Results are saved under ``benchmarks/results/vector_speed/``;
``--from-results`` prints the tables again.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from _common import (
    Results,
    _pyplot,
    _save,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    spread,
)
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

import gym_advrl

#: Instance-steps per timed pass (native) and per SyncVectorEnv pass (slower: fewer).
NATIVE_STEPS = 400_000
SYNC_STEPS = 40_000
#: At most this many vector steps per pass (small num_envs).
MAX_VECTOR_STEPS = 2_000
#: Batches of actions sampled ahead and cycled through.
ACTION_BATCHES = 16
PPO_THRESHOLD = -400.0
PPO_ENVS = 64


def make_env(kind: str, env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    if kind == "native":
        return gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point")
    if kind == "sync":
        return gym.make_vec(env_id, num_envs, vectorization_mode="sync")
    if kind == "gymnasium CartPoleVectorEnv":
        return CartPoleVectorEnv(num_envs=num_envs)
    raise ValueError(kind)


class Runner:
    """One vector env with pre-sampled actions; ``time()`` returns instance-steps/s of one pass."""

    def __init__(self, kind: str, env_id: str, num_envs: int, instance_steps: int, seed: int = 0) -> None:
        self.kind, self.env_id, self.num_envs = kind, env_id, num_envs
        self.env = make_env(kind, env_id, num_envs)
        self.env.action_space.seed(seed)
        self.actions = [self.env.action_space.sample() for _ in range(ACTION_BATCHES)]
        self.vector_steps = max(10, min(MAX_VECTOR_STEPS, instance_steps // num_envs))
        self.seed = seed
        self.passes: list[float] = []

    def time(self) -> float:
        env, actions = self.env, self.actions
        env.reset(seed=self.seed)
        self.seed += self.num_envs
        start = time.perf_counter()
        for k in range(self.vector_steps):
            env.step(actions[k % ACTION_BATCHES])
        self.passes.append(self.num_envs * self.vector_steps / (time.perf_counter() - start))
        return self.passes[-1]


def copy_bandwidth(megabytes: int = 64, repeats: int = 10) -> float:
    """Bytes per second moved by ``np.copyto`` (read + write) of a ``megabytes`` array, best of ``repeats``."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = max(best, 2 * source.nbytes / (time.perf_counter() - start))
    return best


def _array_bytes(env: Any) -> int:
    return sum(value.nbytes for value in vars(env).values() if isinstance(value, np.ndarray))


def bytes_per_instance_step(env_id: str) -> int:
    """The least memory traffic of one instance-step: its action in; its observation, reward and
    two flags out; its state (the native env's per-instance arrays, found as the growth of the
    env's array attributes from 2 to 4 instances) read and written once."""
    small = gym.make_vec(env_id, 2, vectorization_mode="vector_entry_point")
    large = gym.make_vec(env_id, 4, vectorization_mode="vector_entry_point")
    obs, _ = small.reset(seed=0)
    large.reset(seed=0)
    state = (_array_bytes(large.unwrapped) - _array_bytes(small.unwrapped)) // 2
    action = np.asarray(small.action_space.sample()).nbytes // 2
    return action + np.asarray(obs).nbytes // 2 + 8 + 2 + 2 * state


# ---------------------------------------------------------------------------- PPO wall time
def ppo_run(kind: str, seed: int, max_steps: int) -> dict[str, Any]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from sb3_ext.common.vec_env import GymnasiumVecEnv

    torch.set_num_threads(1)  # the same single thread for both, whatever the machine's load

    if kind == "native":
        env = VecMonitor(GymnasiumVecEnv(gym.make_vec("AdvRL/Pendulum-v0", PPO_ENVS)))
    else:
        env = VecMonitor(DummyVecEnv([lambda: gym.make("AdvRL/Pendulum-v0") for _ in range(PPO_ENVS)]))

    class StopAtThreshold(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.reached_at: tuple[int, float] | None = None
            self.curve: list[tuple[int, float]] = []

        def _on_rollout_end(self) -> None:
            returns = [info["r"] for info in self.model.ep_info_buffer]
            if len(returns) >= PPO_ENVS:
                mean = float(np.mean(returns[-PPO_ENVS:]))
                self.curve.append((self.num_timesteps, mean))
                if mean > PPO_THRESHOLD and self.reached_at is None:
                    self.reached_at = (self.num_timesteps, time.perf_counter() - start)

        def _on_step(self) -> bool:
            return self.reached_at is None

    model = PPO(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=512,
        n_epochs=10,
        gamma=0.9,
        gae_lambda=0.95,
        learning_rate=1e-3,
        clip_range=0.2,
        use_sde=True,
        sde_sample_freq=4,
        ent_coef=0.0,
        seed=seed,
        device="cpu",
        policy_kwargs={"ortho_init": False, "net_arch": [64, 64]},
    )
    callback = StopAtThreshold()
    start = time.perf_counter()
    model.learn(max_steps, callback=callback)
    elapsed = time.perf_counter() - start
    env.close()
    steps, seconds = callback.reached_at if callback.reached_at else (None, None)
    return {
        "ppo": kind,
        "seed": seed,
        "steps_to_threshold": steps,
        "seconds_to_threshold": seconds,
        "seconds": elapsed,
        "timesteps": model.num_timesteps,
        "curve": callback.curve,
    }


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--envs", nargs="*", default=None, help="ids to time (default: every native vector env)"
    )
    parser.add_argument(
        "--sync-max-size", type=int, default=4096, help="largest size timed under SyncVectorEnv"
    )
    parser.add_argument("--ppo", action="store_true", help="time PPO to -400 instead of env steps")
    parser.add_argument("--ppo-seeds", type=int, default=3)
    parser.add_argument("--ppo-steps", type=int, default=400_000, help="PPO budget in env steps")
    add_results_argument(parser)
    add_plot_argument(parser, "vector_speed")
    args = parser.parse_args()

    def measure(results: Results) -> None:
        if args.ppo:
            for seed in range(args.ppo_seeds):
                for kind in ("native", "dummy"):  # alternate, so load changes hit both
                    run = results.add(ppo_run(kind, seed, args.ppo_steps))
                    print(kind, seed, run["steps_to_threshold"], run["seconds_to_threshold"], flush=True)
            return
        env_ids = args.envs or sorted(gym_advrl.VECTOR_ENTRY_POINTS)
        results.describe(
            copy_bandwidth=copy_bandwidth(),
            bytes_per_instance_step={e: bytes_per_instance_step(e) for e in env_ids},
        )
        runners: list[Runner] = []
        for size in args.sizes:
            for env_id in env_ids:
                runners.append(Runner("native", env_id, size, NATIVE_STEPS))
                if size <= args.sync_max_size:
                    runners.append(Runner("sync", env_id, size, SYNC_STEPS))
            runners.append(Runner("gymnasium CartPoleVectorEnv", "CartPole-v1", size, NATIVE_STEPS))
            if size <= args.sync_max_size:
                runners.append(Runner("sync", "Pendulum-v1", size, SYNC_STEPS))
        for repeat in range(args.repeats):
            for runner in runners:
                runner.time()
            print(f"pass {repeat + 1}/{args.repeats} done", flush=True)
        for runner in runners:
            results.add(
                {
                    "kind": runner.kind,
                    "env": runner.env_id,
                    "num_envs": runner.num_envs,
                    "passes": runner.passes,
                }
            )

    record = measure_or_load("vector_speed", args, measure)
    if any("ppo" in run for run in record["runs"]):
        print(ppo_table(record))
    if any("kind" in run for run in record["runs"]):
        print(table(record))
        print("\n" + reference_table(record))
        print("\n" + bandwidth_table(record))
        plot(record, args.plot)


def _passes(record: dict[str, Any]) -> dict[tuple[str, str, int], list[float]]:
    return {
        (run["kind"], run["env"], run["num_envs"]): run["passes"] for run in record["runs"] if "kind" in run
    }


def _fmt(values: list[float]) -> str:
    low, median, high = spread(values)
    return f"{median / 1e6:.3g}M ({low / 1e6:.3g}-{high / 1e6:.3g})"


def _ratio(ours: list[float], reference: list[float]) -> str:
    low, median, high = spread([a / b for a, b in zip(ours, reference, strict=True)])
    return f"{median:.3g}x ({low:.3g}-{high:.3g})"


def _rate(value: float) -> str:
    return f"{value / 1e6:.3g}M" if value >= 1e5 else f"{value / 1e3:.3g}k"


def table(record: dict[str, Any]) -> str:
    """Per env: the native median rate at each size with its median ratio to SyncVectorEnv, and the
    ratio's spread over the passes at 1024 (the target size) or the largest size timed."""
    passes = _passes(record)
    sizes = sorted({size for _, _, size in passes})
    env_ids = sorted({env for kind, env, _ in passes if kind == "native"})
    target = 1024 if 1024 in sizes else max(sizes)
    rows = []
    for env_id in env_ids:
        cells = [f"`{env_id.removeprefix('AdvRL/')}`"]
        for size in sizes:
            native = passes.get(("native", env_id, size))
            sync = passes.get(("sync", env_id, size))
            if native is None:
                cells.append("")
                continue
            ratio = f" ({spread([a / b for a, b in zip(native, sync, strict=True)])[1]:.3g}x)" if sync else ""
            cells.append(f"{_rate(spread(native)[1])}{ratio}")
        native, sync = passes.get(("native", env_id, target)), passes.get(("sync", env_id, target))
        cells.append(_ratio(native, sync) if native and sync else "")
        rows.append(cells)
    args = record["args"]
    return (
        f"native instance-steps/s (median of {args['repeats']} interleaved passes) and, in brackets, the median "
        f"ratio to SyncVectorEnv of the same env in the same passes; last column: that ratio at num_envs={target}, "
        "median (min-max)\n\n"
        + markdown_table(
            ("env", *(f"num_envs={size}" for size in sizes), f"native / sync at {target}"),
            rows,
            "l" + "r" * (len(sizes) + 1),
        )
    )


def reference_table(record: dict[str, Any]) -> str:
    """ContinuousCartPole-v0 and Pendulum-v0 native against Gymnasium's own vector envs."""
    passes = _passes(record)
    sizes = sorted({size for _, _, size in passes})
    rows = []
    for size in sizes:
        cartpole = passes.get(("gymnasium CartPoleVectorEnv", "CartPole-v1", size))
        ours_cartpole = passes.get(("native", "AdvRL/ContinuousCartPole-v0", size))
        ours_pendulum = passes.get(("native", "AdvRL/Pendulum-v0", size))
        pendulum_sync = passes.get(("sync", "Pendulum-v1", size))
        if cartpole is None:
            continue
        rows.append(
            [
                size,
                _fmt(cartpole),
                _ratio(ours_cartpole, cartpole) if ours_cartpole else "",
                _ratio(ours_pendulum, cartpole) if ours_pendulum else "",
                _fmt(pendulum_sync) if pendulum_sync else "",
                _ratio(ours_pendulum, pendulum_sync) if ours_pendulum and pendulum_sync else "",
            ]
        )
    return "Gymnasium's own vector envs, same passes\n\n" + markdown_table(
        (
            "num_envs",
            "CartPoleVectorEnv",
            "ContinuousCartPole-v0 / it",
            "Pendulum-v0 / it",
            "Pendulum-v1 SyncVectorEnv",
            "Pendulum-v0 / it",
        ),
        rows,
        "rrrrrr",
    )


def bandwidth_table(record: dict[str, Any]) -> str:
    """How far the native envs are from a memory-bandwidth bound at the largest size."""
    settings = record.get("settings", {})
    bandwidth = settings.get("copy_bandwidth")
    traffic = settings.get("bytes_per_instance_step", {})
    if not bandwidth:
        return ""
    passes = _passes(record)
    size = max(size for kind, _, size in passes if kind == "native")
    rows = []
    for env_id, nbytes in sorted(traffic.items()):
        native = passes.get(("native", env_id, size))
        if native is None:
            continue
        measured = max(native)
        bound = bandwidth / nbytes
        rows.append(
            [
                f"`{env_id.removeprefix('AdvRL/')}`",
                nbytes,
                f"{bound / 1e6:,.0f}M",
                f"{measured / 1e6:.3g}M",
                f"{measured / bound:.1%}",
            ]
        )
    return (
        f"memory-bandwidth bound at num_envs={size}: copy bandwidth {bandwidth / 1e9:.1f} GB/s (np.copyto of "
        "64 MB, read + write); bound = bandwidth / least bytes per instance-step; best pass\n\n"
        + markdown_table(("env", "bytes / instance-step", "bound", "measured", "fraction"), rows, "lrrrr")
    )


def ppo_table(record: dict[str, Any]) -> str:
    runs = [run for run in record["runs"] if "ppo" in run]
    rows = []
    for kind in ("native", "dummy"):
        chosen = [run for run in runs if run["ppo"] == kind]
        seconds = [run["seconds_to_threshold"] for run in chosen if run["seconds_to_threshold"] is not None]
        steps = [run["steps_to_threshold"] for run in chosen if run["steps_to_threshold"] is not None]
        label = "GymnasiumVecEnv(make_vec(64))" if kind == "native" else "DummyVecEnv(64 x make)"
        rows.append(
            [
                label,
                f"{len(seconds)}/{len(chosen)}",
                f"{np.mean(steps):,.0f} +- {np.std(steps):,.0f}" if steps else "-",
                f"{np.mean(seconds):.1f} +- {np.std(seconds):.1f}" if seconds else "-",
            ]
        )
    budget = record["args"].get("ppo_steps")
    return (
        f"PPO on AdvRL/Pendulum-v0, 64 envs, to a mean return > {PPO_THRESHOLD:g} over the last 64 episodes "
        f"(budget {budget:,} steps), seeds 0..{len({r['seed'] for r in runs}) - 1}\n\n"
        + markdown_table(("VecEnv", "reached", "env steps", "wall seconds"), rows, "lrrr")
    )


def plot(record: dict[str, Any], path: Any) -> None:
    passes = _passes(record)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    env_ids = sorted({env for kind, env, _ in passes if kind == "native"})
    curves: list[tuple[str, str, str, Callable[..., Any]]] = []
    for k, env_id in enumerate(env_ids):
        color = colors[k % len(colors)]
        for kind, style in (("native", "-"), ("sync", ":")):
            points = sorted(
                (size, np.median(values))
                for (kd, e, size), values in passes.items()
                if kd == kind and e == env_id
            )
            if points:
                sizes, rates = zip(*points, strict=True)
                label = env_id.removeprefix("AdvRL/") if kind == "native" else None
                ax.plot(sizes, rates, style, marker="o", markersize=3, color=color, label=label)
    reference = sorted(
        (size, np.median(values))
        for (kind, _, size), values in passes.items()
        if kind == "gymnasium CartPoleVectorEnv"
    )
    if reference:
        sizes, rates = zip(*reference, strict=True)
        ax.plot(sizes, rates, "--", color="black", linewidth=2, label="Gymnasium CartPoleVectorEnv")
    del curves
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("num_envs")
    ax.set_ylabel("instance-steps / s (median pass)")
    ax.set_title("native vector envs (solid) vs SyncVectorEnv of the same env (dotted)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)


if __name__ == "__main__":
    main()
