"""Dreamer on the pendulum, from states and from 64x64 pixels, against baselines run in the same
invocation; and the wall time of one default Dreamer update on a 64x64 image batch.

Tasks (``--tasks``):

- ``states``: ``AdvRL/Pendulum-v0`` observations. Dreamer (128-unit layers, sequences of 32
  steps: see ``SMALL_DREAMER``), the latent MPC planner (``LatentMPC``,
  when ``sb3_ext`` has it), ``WorldModelMPC`` (PETS, with the env's ``reward_fn``) and SB3 SAC.
  Reported: environment steps until the mean evaluation return reaches -200 (first evaluation
  that does; each run stops there) and the last evaluation.
- ``pixels``: the same env observed as 64x64 RGB frames drawn directly at that size
  (``gym.make(..., render_mode="rgb_array", width=64, height=64)``, each action applied for 2
  steps by ``gym_advrl.wrappers.ActionRepeat`` as in PlaNet and Dreamer, then Gymnasium's
  ``AddRenderObservation(render_only=True)``). Dreamer and LatentMPC (one frame: their recurrent
  state carries the velocity) against SAC with SB3's ``CnnPolicy`` on a stack of the last 3 frames
  (``VecFrameStack``: a single frame has no velocity; batches of 128), the same budget of environment steps
  (frames; the agents decide on every second one).
  Reported: the final mean return, steps to -200, wall time per 1,000 environment steps, and
  what each world model explains at the end (``world_model_fit``).

Every ``eval_every`` steps the deterministic policy (recurrent state threaded by
``evaluate_policy``) is evaluated on ``eval_episodes`` episodes from fixed start states.

``--timing`` instead measures one default ``Dreamer.update`` on a batch of 16 sequences x 64 steps
of 64x64x3 images (``--repeats`` times, reporting the minimum and median), with torch on
``--threads`` threads (default 2: the machine of the acceptance criterion). The learning runs use
one torch thread unless ``--threads`` says otherwise (one process per seed packs the cores
better; a single pixel run alone on the machine goes faster with 2).

    python benchmarks/dreamer.py [--tasks states pixels] [--algos Dreamer LatentMPC WorldModelMPC SAC]
        [--seeds 0 1 2] [--budget N] [--threads 1] [--plot PNG | --no-plot]
    python benchmarks/dreamer.py --timing [--repeats 5] [--threads 2] [--model default|small]

Runs are saved under ``benchmarks/results/dreamer/`` (``--timing``: ``dreamer/timing/``);
``--from-results`` prints the tables (and draws the plot) from saved runs. ``--budget`` replaces
every task's budget (a quick check). A pixel run takes hours, so at every evaluation each run
also saves a checkpoint (model, replay buffer, curve, timers) under ``--checkpoints``; started
again with the same settings, a run resumes from it (a fresh environment episode and random
stream, the learning state as it was) and deletes it once the run is saved.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import (
    RESULTS_ROOT,
    Results,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    save_learning_curves,
    steps_to_threshold,
)
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

import gym_advrl  # noqa: F401  (registers AdvRL/ ids)
import sb3_ext
from gym_advrl.wrappers import ActionRepeat
from sb3_ext import Dreamer, WorldModelMPC
from sb3_ext.common.sequence_buffer import SequenceBatch

ENV_ID = "AdvRL/Pendulum-v0"
EVAL_SEED = 10_000
THRESHOLD = -200.0
PIXELS = 64
DOCS_IMAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "images" / "dreamer_learning_curves.png"

# From states Dreamer runs with 128-unit layers and sequences of 32 steps: at the defaults (256
# units, 64 steps) an update took 10-12 s on the shared 2-core machine, at these sizes about 2 s
# (load average ~8); train_ratio 64 -> one update of 16 x 32 replayed steps every 8 env steps.
# From pixels it runs at its defaults except train_ratio: 128 replayed steps per decision, one
# update of 16 x 64 steps every 8 decisions (16 frames). SAC: SB3 defaults with the RL Zoo's
# Pendulum learning rate; from pixels, SB3's CnnPolicy on 3 stacked frames with batches of 128 (as
# SAC-AE from pixels; at SB3's 256 an update took 1.3-1.9 s on one core of the 2-core machine, 3.6-5
# hours a seed, more than a working session) and its modules in the channels-last memory layout
# (``channels_last_cnn``).
SMALL_DREAMER = dict(
    sequence_length=32,
    train_ratio=64,
    policy_kwargs=dict(
        net_arch=[128, 128],
        world_model_kwargs=dict(deter_size=128, hidden_size=128, mlp_layers=[128, 128], embed_dim=128),
    ),
)
# LatentMPC, from states and from pixels: the same 128-unit world model (PlaNet's Gaussian
# latents; from pixels with the default CNN), and a CEM of 300 candidates, 30 elites and 4
# iterations over PlaNet's horizon of 12 steps: at its defaults (500 x 5, 256 units) an action
# took 1.4 s on one torch thread with the 2 cores shared by 5 processes, with these settings
# 0.27 s (0.13 s on a quiet core).
SMALL_LATENT_MPC = dict(
    sequence_length=32,
    population_size=300,
    n_elites=30,
    n_iterations=4,
    policy_kwargs=dict(world_model_kwargs=SMALL_DREAMER["policy_kwargs"]["world_model_kwargs"]),
)
TASKS: dict[str, dict[str, Any]] = {
    "states": dict(
        budget=20_000,
        eval_every=1_000,
        eval_episodes=5,
        algos=("Dreamer", "LatentMPC", "WorldModelMPC", "SAC"),
        kwargs=dict(
            Dreamer=SMALL_DREAMER,
            LatentMPC=SMALL_LATENT_MPC,
            WorldModelMPC={},
            SAC=dict(learning_rate=1e-3),
        ),
        stop_at_threshold=("Dreamer", "LatentMPC", "WorldModelMPC", "SAC"),
    ),
    "pixels": dict(
        budget=20_000,
        eval_every=2_000,
        eval_episodes=5,
        action_repeat=2,
        algos=("Dreamer", "LatentMPC", "SAC"),
        # Each replay buffer holds the whole run (10,000 decisions): nothing is ever evicted, and
        # a checkpoint does not save empty slots.
        kwargs=dict(
            Dreamer=dict(train_ratio=128, buffer_size=10_000),
            LatentMPC=dict(SMALL_LATENT_MPC, buffer_size=10_000),
            SAC=dict(learning_rate=1e-3, buffer_size=10_000, batch_size=128),
        ),
        stop_at_threshold=(),
    ),
}
ALGOS = ("Dreamer", "LatentMPC", "WorldModelMPC", "SAC")
CHECKPOINTS = RESULTS_ROOT / "dreamer" / "checkpoints"


def pixel_env(action_repeat: int = 1) -> gym.Env:
    """The pendulum observed as 64x64 RGB frames drawn at that size, each action applied for
    ``action_repeat`` steps (only the last frame is drawn)."""
    env = gym.make(ENV_ID, render_mode="rgb_array", width=PIXELS, height=PIXELS)
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    return gym.wrappers.AddRenderObservation(env, render_only=True)


def make_env(task: str, algo: str, n_envs: int = 1) -> VecEnv:
    if task == "states":
        return make_vec_env(ENV_ID, n_envs=n_envs)
    env = make_vec_env(pixel_env, n_envs=n_envs, env_kwargs=dict(action_repeat=TASKS[task]["action_repeat"]))
    if algo == "SAC":  # a single frame has no velocity: SAC sees the last 3 frames
        env = VecTransposeImage(VecFrameStack(env, 3, channels_order="last"))
    return env


def channels_last_cnn(task: str, algo: str, model: Any) -> Any:
    """SAC's ``CnnPolicy`` from pixels with its convolution weights in the channels-last memory
    layout (as Dreamer's CNN): the same network, an update 1.45x faster on one core here."""
    if task == "pixels" and algo == "SAC":
        model.policy.to(memory_format=torch.channels_last)
    return model


def make_model(task: str, algo: str, seed: int) -> Any:
    kwargs = TASKS[task]["kwargs"][algo]
    policy = "CnnPolicy" if task == "pixels" else "MlpPolicy"
    env = make_env(task, algo)
    if algo == "Dreamer":
        return Dreamer(policy, env, seed=seed, device="cpu", **kwargs)
    if algo == "LatentMPC":
        if not hasattr(sb3_ext, "LatentMPC"):
            raise SystemExit("LatentMPC is not in this version of sb3_ext: leave it out of --algos")
        return sb3_ext.LatentMPC(policy, env, seed=seed, device="cpu", **kwargs)
    if algo == "WorldModelMPC":
        return WorldModelMPC(policy, env, seed=seed, **kwargs)
    return channels_last_cnn(task, algo, SAC(policy, env, seed=seed, device="cpu", **kwargs))


class EvalCallback(BaseCallback):
    """Counts environment steps (frames: ``info["frames"]`` under action repeat), evaluates every
    ``eval_every`` of them and then saves a checkpoint when it has a folder; stops at the first
    evaluation that reaches the threshold once past ``stop_after`` steps (``None``: never)."""

    def __init__(
        self,
        task: str,
        algo: str,
        eval_every: int,
        stop_after: int | None,
        checkpoint: pathlib.Path | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.task, self.algo, self.cfg, self.stop_after = task, algo, TASKS[task], stop_after
        self.eval_every, self.checkpoint = eval_every, checkpoint
        self.eval_env = make_env(task, algo, n_envs=self.cfg["eval_episodes"])
        state = state or {}
        self.curve: list[tuple[int, float]] = [tuple(point) for point in state.get("curve", [])]
        self.frames: int = state.get("frames", 0)
        self.eval_seconds: float = state.get("eval_seconds", 0.0)
        self.seconds_before: float = state.get("seconds", 0.0)  # learning time of earlier processes
        self.load_averages: list[float] = state.get("load_averages", [])
        self.resumes: int = state.get("resumes", -1) + 1
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall time of the run so far, evaluations included, over every process that ran it."""
        return self.seconds_before + time.perf_counter() - self.start

    def _on_step(self) -> bool:
        previous = self.frames
        self.frames += sum(int(info.get("frames", 1)) for info in self.locals["infos"])
        if self.frames // self.eval_every == previous // self.eval_every:
            return True
        start = time.perf_counter()
        self.eval_env.seed(EVAL_SEED)  # identical start states at every evaluation
        mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.cfg["eval_episodes"])
        self.eval_seconds += time.perf_counter() - start
        self.curve.append((self.frames, float(mean)))
        self.load_averages.append(os.getloadavg()[0])
        print(f"  {self.task} {self.algo} step {self.frames}: {mean:.1f}", flush=True)
        if self.checkpoint is not None:
            self.save_checkpoint()
        return not (self.stop_after is not None and mean >= THRESHOLD and self.frames >= self.stop_after)

    def save_checkpoint(self) -> None:
        """Model, replay buffer and this callback's counters, written to a new folder that then
        replaces the old one (a process killed while saving leaves the previous checkpoint)."""
        assert self.checkpoint is not None
        partial = self.checkpoint.with_name(self.checkpoint.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.model.save(partial / "model.zip")
        self.model.save_replay_buffer(partial / "replay_buffer.pkl")
        state = {
            "curve": self.curve,
            "frames": self.frames,
            "eval_seconds": self.eval_seconds,
            "seconds": self.seconds,
            "load_averages": self.load_averages,
            "resumes": self.resumes,
        }
        (partial / "state.json").write_text(json.dumps(state))
        old = self.checkpoint.with_name(self.checkpoint.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        partial.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)


def checkpoint_folder(root: pathlib.Path, task: str, algo: str, seed: int, budget: int) -> pathlib.Path:
    """One folder per run and settings: a changed configuration never resumes an old checkpoint."""
    cfg = TASKS[task]
    settings = {key: cfg[key] for key in ("eval_every", "eval_episodes", "action_repeat") if key in cfg}
    settings["kwargs"] = cfg["kwargs"][algo]
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=repr).encode()).hexdigest()[:8]
    return root / f"{task}-{algo}-seed{seed}-budget{budget}-{digest}"


def load_model(task: str, algo: str, folder: pathlib.Path, seed: int) -> Any:
    """The checkpointed model with its replay buffer, on a fresh environment."""
    cls = {"Dreamer": Dreamer, "WorldModelMPC": WorldModelMPC, "SAC": SAC}.get(algo) or sb3_ext.LatentMPC
    model = channels_last_cnn(
        task, algo, cls.load(folder / "model.zip", env=make_env(task, algo), device="cpu")
    )
    model.load_replay_buffer(folder / "replay_buffer.pkl")
    model.set_random_seed(seed + model.num_timesteps)  # a fresh stream for the rest of the run
    return model


def world_model_fit(model: Any, windows: int = 32, length: int = 32) -> dict[str, float]:
    """What the world model explains at the end of a run, on ``windows`` replayed windows of
    ``length`` steps: its reconstruction error (summed squared error per observation, as in its
    loss) against that of the buffer's mean observation (a model that knows nothing of the state
    does no better), and the R^2 of its reward predictions on the posterior states."""
    buffer, wm = model.replay_buffer, model.policy.world_model
    np.random.seed(EVAL_SEED)  # noqa: NPY002  (the buffer samples from the global generator)
    batch = buffer.sample(windows, length)
    stored = buffer.observations[: buffer.stream_sizes()[0], 0]
    mean_target = wm.observation_target(torch.as_tensor(stored.mean(0, dtype=np.float64)))
    with torch.no_grad():
        _, terms, posteriors = wm.compute_loss(batch)
        target = wm.observation_target(batch.observations)
        mean_error = (target - mean_target.float()).pow(2).flatten(2).sum(-1).mean()
        rewards = batch.rewards
        predicted = wm.reward(wm.features(posteriors))
        r2 = 1.0 - (predicted - rewards).pow(2).mean() / rewards.var()
    return {
        "reconstruction_error": float(terms["reconstruction_loss"]),
        "mean_observation_error": float(mean_error),
        "reward_r2": float(r2),
        "kl": float(terms["kl"]),
    }


def run(
    task: str, algo: str, seed: int, budget: int, checkpoints: pathlib.Path | None = None
) -> dict[str, Any]:
    cfg = TASKS[task]
    repeat = cfg.get("action_repeat", 1)
    folder = checkpoint_folder(checkpoints, task, algo, seed, budget) if checkpoints else None
    state = None
    if folder is not None and (folder / "state.json").exists():
        state = json.loads((folder / "state.json").read_text())
        model = load_model(task, algo, folder, seed)
        print(f"  {task} {algo} seed {seed}: resuming at step {state['frames']}", flush=True)
    else:
        model = make_model(task, algo, seed)
    stop_after = 0 if algo in cfg["stop_at_threshold"] else None
    callback = EvalCallback(task, algo, min(cfg["eval_every"], budget), stop_after, folder, state)
    decisions = budget // repeat
    model.learn(decisions - model.num_timesteps, callback=callback, reset_num_timesteps=state is None)
    seconds = callback.seconds
    fit = world_model_fit(model) if algo in ("Dreamer", "LatentMPC") else None
    return {
        "task": task,
        "algo": algo,
        "seed": seed,
        "budget": budget,
        "action_repeat": repeat,
        "kwargs": cfg["kwargs"][algo],
        "curve": callback.curve,
        "steps": callback.frames,
        "train_seconds": seconds,
        # Wall time of learning alone (the evaluations left out), per 1,000 environment steps.
        "seconds_per_1000_steps": 1000 * (seconds - callback.eval_seconds) / max(callback.frames, 1),
        "load_average": os.getloadavg()[0],
        "load_averages": callback.load_averages,
        "resumes": callback.resumes,
        "threads": torch.get_num_threads(),
        "world_model_fit": fit,
    }


def tables(runs: list[dict[str, Any]]) -> str:
    out = []
    for task in TASKS:
        task_runs = [r for r in runs if r["task"] == task]
        if not task_runs:
            continue
        rows = []
        for algo in ALGOS:
            algo_runs = [r for r in task_runs if r["algo"] == algo]
            if not algo_runs:
                continue
            hits = [steps_to_threshold(r["curve"], THRESHOLD) for r in algo_runs]
            reached = [h for h in hits if h is not None]
            final = [r["curve"][-1][1] if r["curve"] else None for r in algo_runs]
            final_steps = [r["curve"][-1][0] if r["curve"] else None for r in algo_runs]
            budget = algo_runs[0]["budget"]
            rows.append(
                [
                    algo,
                    len(algo_runs),
                    f"{mean_std(reached)} ({len(reached)}/{len(algo_runs)})",
                    f"{mean_std(final, '.1f')} (at {mean_std(final_steps)})",
                    mean_std([r["seconds_per_1000_steps"] for r in algo_runs], ".1f"),
                    f"{budget}",
                ]
            )
        header = (
            "algorithm",
            "seeds",
            "steps to -200 (reached)",
            "last evaluation (at step)",
            "s per 1,000 steps",
            "budget",
        )
        out += [f"**{ENV_ID}, {task}**", "", markdown_table(header, rows, "llrrrr"), ""]
        out += verdicts(task, task_runs)
        out += fit_table(task_runs)
    return "\n".join(out)


def fit_table(runs: list[dict[str, Any]]) -> list[str]:
    """The world models at the end of the runs (``world_model_fit``), one row per run."""
    rows = [
        [
            r["algo"],
            r["seed"],
            f"{r['world_model_fit']['reconstruction_error']:.1f}",
            f"{r['world_model_fit']['mean_observation_error']:.1f}",
            f"{r['world_model_fit']['reward_r2']:.2f}",
            f"{r['world_model_fit']['kl']:.2f}",
        ]
        for r in runs
        if r.get("world_model_fit")
    ]
    if not rows:
        return []
    header = (
        "world model of",
        "seed",
        "reconstruction error",
        "mean observation's error",
        "reward R^2",
        "KL",
    )
    return [
        "World models at the end (32 replayed windows of 32 steps):",
        "",
        markdown_table(header, rows, "lrrrrr"),
        "",
    ]


def verdicts(task: str, runs: list[dict[str, Any]]) -> list[str]:
    """The targets of the benchmark, stated as met or not from the runs."""
    by_algo: dict[str, dict[int, dict[str, Any]]] = {}
    for r in runs:
        by_algo.setdefault(r["algo"], {})[r["seed"]] = r
    dreamer, sac = by_algo.get("Dreamer", {}), by_algo.get("SAC", {})
    seeds = sorted(set(dreamer) & set(sac))
    if not seeds:
        return []
    lines = []
    if task == "states":
        wins = []
        for seed in seeds:
            d = steps_to_threshold(dreamer[seed]["curve"], THRESHOLD)
            s = steps_to_threshold(sac[seed]["curve"], THRESHOLD)
            wins.append(d is not None and (s is None or d < s))
        lines.append(
            f"Target (Dreamer reaches -200 in fewer steps than SAC on every seed): "
            f"{'met' if all(wins) else 'not met'} ({sum(wins)}/{len(seeds)} seeds)."
        )
    else:
        margins = [dreamer[seed]["curve"][-1][1] - sac[seed]["curve"][-1][1] for seed in seeds]
        lines.append(
            f"Target (Dreamer's final return beats SAC-pixels' by >= 300 on every seed): "
            f"{'met' if min(margins) >= 300 else 'not met'} "
            f"(margins {', '.join(f'{m:.0f}' for m in margins)}; {len(seeds)} seed(s) with both runs)."
        )
    return [*lines, ""]


def plot(runs: list[dict[str, Any]], path: pathlib.Path) -> None:
    panels = {}
    for task in TASKS:
        series = {
            algo: [r["curve"] for r in runs if r["task"] == task and r["algo"] == algo and r["curve"]]
            for algo in ALGOS
        }
        if any(series.values()):
            panels[f"{ENV_ID}, {task}"] = series
    lines = {panel: {"-200": THRESHOLD} for panel in panels}
    save_learning_curves(path, panels, ylabel="mean evaluation return", lines=lines)


# ---------------------------------------------------------------------------- timing
def time_update(repeats: int, threads: int, model_size: str = "default") -> dict[str, Any]:
    """Wall time of one Dreamer update on 16 x 64 steps of 64x64x3 images: the default model, or
    (``model_size="small"``) the 128-unit one of ``SMALL_DREAMER``."""
    torch.set_num_threads(threads)
    policy_kwargs = SMALL_DREAMER["policy_kwargs"] if model_size == "small" else None
    model = Dreamer("CnnPolicy", pixel_env(), seed=0, device="cpu", policy_kwargs=policy_kwargs)
    rng = np.random.default_rng(0)
    batch, length = model.batch_size, model.sequence_length
    is_first = torch.zeros(batch, length)
    is_first[:, 0] = 1.0
    data = SequenceBatch(
        observations=torch.as_tensor(
            rng.integers(0, 256, (batch, length, 3, PIXELS, PIXELS), dtype=np.uint8)
        ),
        actions=torch.as_tensor(rng.uniform(-1, 1, (batch, length, 1)), dtype=torch.float32),
        rewards=torch.as_tensor(rng.normal(size=(batch, length)), dtype=torch.float32),
        is_first=is_first,
        is_terminal=torch.zeros(batch, length),
    )
    model.update(data)  # warm-up (allocations, first-call dispatch)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.update(data)
        seconds.append(time.perf_counter() - start)
        print(f"  update: {seconds[-1]:.2f} s", flush=True)
    return {
        "threads": threads,
        "model": model_size,
        "batch": f"{batch} x {length} x 3 x {PIXELS} x {PIXELS}",
        "seconds": seconds,
        "load_average": os.getloadavg()[0],
    }


def timing_table(runs: list[dict[str, Any]]) -> str:
    rows = [
        [
            r.get("model", "default"),
            r["batch"],
            r["threads"],
            len(r["seconds"]),
            f"{min(r['seconds']):.2f}",
            f"{np.median(r['seconds']):.2f}",
            f"{r['load_average']:.1f}",
        ]
        for r in runs
    ]
    header = ("model", "batch", "torch threads", "updates", "min s", "median s", "load average")
    return markdown_table(header, rows, "llrrrrr")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--budget", type=int, default=None, help="replace every task's budget (a quick check)"
    )
    parser.add_argument("--plot", type=pathlib.Path, default=DOCS_IMAGE)
    parser.add_argument(
        "--checkpoints",
        type=pathlib.Path,
        default=CHECKPOINTS,
        help="folder of the runs' checkpoints (resumed when present)",
    )
    parser.add_argument("--no-checkpoints", action="store_true", help="neither save nor resume checkpoints")
    parser.add_argument("--no-plot", action="store_true", help="skip the learning-curve PNG")
    parser.add_argument("--timing", action="store_true", help="only time one default update on 64x64 images")
    parser.add_argument("--repeats", type=int, default=5, help="timed updates (--timing)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: 2 with --timing, else 1)"
    )
    parser.add_argument(
        "--model",
        choices=["default", "small"],
        default="default",
        help="--timing: the default model or SMALL_DREAMER's 128-unit one",
    )
    add_results_argument(parser)
    args = parser.parse_args()

    if args.timing:
        record = measure_or_load(
            "dreamer/timing",
            args,
            lambda results: results.add(time_update(args.repeats, args.threads or 2, args.model)),
        )
        print(timing_table(record["runs"]))
        return

    torch.set_num_threads(args.threads or 1)  # small networks: intra-op threads add little

    def measure(results: Results) -> None:
        for task in args.tasks:
            for algo in (a for a in args.algos if a in TASKS[task]["algos"]):
                for seed in args.seeds:
                    budget = args.budget or TASKS[task]["budget"]
                    checkpoints = None if args.no_checkpoints else args.checkpoints
                    results.add(run(task, algo, seed, budget, checkpoints))
                    if checkpoints is not None:  # the run is saved: its checkpoint is done with
                        shutil.rmtree(
                            checkpoint_folder(checkpoints, task, algo, seed, budget), ignore_errors=True
                        )

    runs = measure_or_load("dreamer", args, measure)["runs"]
    print(tables(runs))
    if not args.no_plot:
        plot(runs, args.plot)
        print(f"learning curves: {args.plot}")


if __name__ == "__main__":
    main()
