"""Environment steps per second, with Gymnasium's classic-control envs measured in the same run.

Every env is made with ``gym.make`` (so the same wrappers, time limit included, are on both sides)
and stepped with pre-sampled actions, resetting at episode ends.

    python benchmarks/env_speed.py [--steps 20000] [--pixel-steps 2000] [--repeats 5] [--plot PNG]

Measurements are saved under ``benchmarks/results/env_speed/``; ``--from-results`` prints their
table again. The plot (``--plot``) shows each env's ratio to its Gymnasium counterpart, pass by
pass: min / median / max over the interleaved passes.

A second table times 64x64 RGB observations of the continuous-control envs (Gymnasium's
``AddRenderObservation``): frames drawn directly at 64x64 (``width=64, height=64``) against the
default frame shrunk by Gymnasium's ``ResizeObservation`` (needs OpenCV, the ``[pixels]`` extra),
interleaved in the same passes.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    save_ratio_plot,
)

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)

#: Our env -> the Gymnasium env it must keep pace with (at least 0.9x its steps/s).
COUNTERPARTS = {
    "AdvRL/Pendulum-v0": "Pendulum-v1",
    "AdvRL/ContinuousCartPole-v0": "CartPole-v1",
}


#: Pixel-observation setups: (env id, how the 64x64 frames are made).
PIXEL_SETUPS = [
    (env_id, way)
    for env_id in ("AdvRL/Pendulum-v0", "AdvRL/ContinuousCartPole-v0")
    for way in ("drawn", "resized")
]
PIXEL_SIZE = 64


def make_pixel_env(env_id: str, way: str) -> gym.Env:
    """64x64 frames as observations: drawn at that size, or the default frame resized."""
    if way == "drawn":
        env = gym.make(env_id, render_mode="rgb_array", width=PIXEL_SIZE, height=PIXEL_SIZE)
        return gym.wrappers.AddRenderObservation(env, render_only=True)
    env = gym.wrappers.AddRenderObservation(gym.make(env_id, render_mode="rgb_array"), render_only=True)
    return gym.wrappers.ResizeObservation(env, (PIXEL_SIZE, PIXEL_SIZE))


class Runner:
    """One env with pre-sampled actions; ``time()`` returns steps/s of one timed pass."""

    def __init__(self, env_id: str, n_steps: int, seed: int = 0, env: gym.Env | None = None) -> None:
        self.env = gym.make(env_id) if env is None else env
        self.env.action_space.seed(seed)
        self.actions = [self.env.action_space.sample() for _ in range(n_steps)]
        if env_id == "CartPole-v1":
            self.actions = [int(a) for a in self.actions]
        self.seed = seed
        self.passes: list[float] = []

    def time(self) -> float:
        env = self.env
        env.reset(seed=self.seed)
        self.seed += 1
        start = time.perf_counter()
        for action in self.actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        self.passes.append(len(self.actions) / (time.perf_counter() - start))
        return self.passes[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--pixel-steps", type=int, default=2_000, help="steps per pass with 64x64 pixels")
    parser.add_argument("--repeats", type=int, default=5)
    add_results_argument(parser)
    add_plot_argument(parser, "env_speed")
    args = parser.parse_args()

    def measure(results: Results) -> None:
        ids = sorted(env_id for env_id in gym.registry if env_id.startswith("AdvRL/"))
        runners = {env_id: Runner(env_id, args.steps) for env_id in [*ids, *COUNTERPARTS.values()]}
        pixel_runners = {
            (env_id, way): Runner(env_id, args.pixel_steps, env=make_pixel_env(env_id, way))
            for env_id, way in PIXEL_SETUPS
        }
        # Interleave: every repeat times every env once, so load changes hit all envs alike.
        for _ in range(args.repeats):
            for runner in [*runners.values(), *pixel_runners.values()]:
                runner.time()
        for env_id, runner in runners.items():
            results.add({"env": env_id, "steps_per_second": max(runner.passes), "passes": runner.passes})
        for (env_id, way), runner in pixel_runners.items():
            results.add(
                {
                    "env": env_id,
                    "pixels": way,
                    "steps_per_second": max(runner.passes),
                    "passes": runner.passes,
                }
            )

    record = measure_or_load("env_speed", args, measure)
    print(table(record))
    if any("pixels" in run for run in record["runs"]):
        print("\n" + pixel_table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    """Ratio to the Gymnasium counterpart in each pass (the passes interleave, so pass r of both
    envs ran under the same load)."""
    passes = {
        run["env"]: run.get("passes", [run["steps_per_second"]])
        for run in record["runs"]
        if "pixels" not in run
    }
    ratios = {
        f"{env_id.removeprefix('AdvRL/')} / {ref_id}": [
            ours / ref for ours, ref in zip(passes[env_id], passes[ref_id], strict=True)
        ]
        for env_id, ref_id in COUNTERPARTS.items()
        if env_id in passes and ref_id in passes
    }
    save_ratio_plot(
        path,
        ratios,
        title=f"steps/s relative to Gymnasium ({record['args']['repeats']} interleaved passes of "
        f"{record['args']['steps']:,} steps)",
        xlabel="steps/s ratio, ours / Gymnasium (bar: median pass, whiskers: min and max)",
        target=0.9,
    )


def table(record: dict[str, Any]) -> str:
    args = record["args"]
    best = {run["env"]: run["steps_per_second"] for run in record["runs"] if "pixels" not in run}
    rows, failures = [], []
    for env_id in (env_id for env_id in best if env_id.startswith("AdvRL/")):
        ours = best[env_id]
        ref_id = COUNTERPARTS.get(env_id)
        if ref_id is None:
            rows.append([f"`{env_id}`", f"{ours:,.0f}", "", "", ""])
            continue
        reference = best[ref_id]
        ratio = ours / reference
        rows.append([f"`{env_id}`", f"{ours:,.0f}", f"`{ref_id}`", f"{reference:,.0f}", f"{ratio:.2f}x"])
        if ratio < 0.9:
            failures.append(f"{env_id}: {ratio:.2f}x of {ref_id}")
    verdict = (
        "below the 0.9x target: " + "; ".join(failures)
        if failures
        else "all counterparts within the 0.9x target"
    )
    return (
        f"steps per second, best of {args['repeats']} interleaved passes of {args['steps']} steps, "
        "gym.make wrappers on both sides\n\n"
        + markdown_table(("env", "steps/s", "Gymnasium counterpart", "its steps/s", "ratio"), rows, "lrlrr")
        + "\n\n"
        + verdict
    )


def pixel_table(record: dict[str, Any]) -> str:
    """Frames per second of 64x64 observations, drawn directly against resized (same passes)."""
    args = record["args"]
    best = {(run["env"], run["pixels"]): run["steps_per_second"] for run in record["runs"] if "pixels" in run}
    rows = []
    for env_id in dict.fromkeys(env_id for env_id, _ in best):
        drawn, resized = best[(env_id, "drawn")], best[(env_id, "resized")]
        rows.append([f"`{env_id}`", f"{drawn:,.0f}", f"{resized:,.0f}", f"{drawn / resized:.1f}x"])
    return (
        f"64x64 RGB observations (AddRenderObservation), steps (= frames) per second, best of "
        f"{args['repeats']} interleaved passes of {args['pixel_steps']} steps\n\n"
        + markdown_table(
            ("env", "drawn at 64x64", "default frame + ResizeObservation", "speed-up"), rows, "lrrr"
        )
    )


if __name__ == "__main__":
    main()
