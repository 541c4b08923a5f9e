"""``advrl``: list environments, train, evaluate and plot, in the spirit of rl-zoo3's ``train.py``.

    advrl envs
    advrl train WorldModelMPC AdvRL/Pendulum-v0 --timesteps 3000 --out runs/mpc
    advrl eval runs/mpc --episodes 10 --gif pendulum.gif
    advrl plot runs/mpc-s0 runs/mpc-s1 runs/sac-s0 --out compare.png
    advrl tune PERDQN CartPole-v1 --hp learning_rate=loguniform(1e-4,1e-2) --num-samples 8 --out runs/sweep

Every user error (a bad option, an unknown algorithm, a path that cannot be written) is one line on
stderr naming the argument, with exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext.hyperparameters import parse_hyperparameters

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
#: Default share of the training steps that evaluations during ``advrl train`` may take.
EVAL_FRACTION = 0.2
#: Episode length assumed for the evaluation budget when an env has no time limit.
UNBOUNDED_EPISODE_STEPS = 1000


# ---------------------------------------------------------------------------- registries
def algorithms() -> dict[str, type]:
    """Every usable algorithm: this package's, SB3's and sb3-contrib's, keyed by lower-case name."""
    import sb3_contrib
    import stable_baselines3
    from stable_baselines3.common.base_class import BaseAlgorithm

    import sb3_ext

    found: dict[str, type] = {}
    for module in (stable_baselines3, sb3_contrib, sb3_ext):
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) and issubclass(obj, BaseAlgorithm) and not inspect.isabstract(obj):
                found[name.lower()] = obj
    return found


def resolve_algorithm(name: str) -> type:
    table = algorithms()
    cls = table.get(name.lower())
    if cls is None:
        raise ValueError(
            f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(c.__name__ for c in table.values()))}"
        )
    return cls


def resolve_env(env_id: str) -> str:
    if env_id not in gym.registry:
        ours = ", ".join(sorted(k for k in gym.registry if k.startswith("AdvRL/")))
        raise ValueError(
            f"unknown environment {env_id!r}; the AdvRL environments are: {ours} (any registered Gymnasium id works too)"
        )
    return env_id


def marl_modules() -> list[Any]:
    """The ``gym_advrl.marl`` environment modules (``*_v<N>``), if the multi-agent package is present."""
    try:
        marl = importlib.import_module("gym_advrl.marl")
    except ImportError:
        return []
    names = sorted(info.name for info in pkgutil.iter_modules(marl.__path__) if info.name[-3:-1] == "_v")
    return [importlib.import_module(f"gym_advrl.marl.{name}") for name in names]


def default_policy(cls: type, observation_space: gym.Space) -> str:
    aliases = getattr(cls, "policy_aliases", {})
    if isinstance(observation_space, gym.spaces.Dict) and "MultiInputPolicy" in aliases:
        return "MultiInputPolicy"
    is_image = isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 3
    for candidate in (("CnnPolicy", "CnnLstmPolicy") if is_image else ()) + ("MlpPolicy", "MlpLstmPolicy"):
        if candidate in aliases:
            return candidate
    return next(iter(aliases))


def describe_space(space: gym.Space) -> str:
    """A short one-line description: ``Box(-1..1, (3,), float32)``, ``Discrete(4)``."""
    if isinstance(space, gym.spaces.Box):
        low, high = float(np.min(space.low)), float(np.max(space.high))
        return f"Box({low:g}..{high:g}, {space.shape}, {space.dtype})"
    return str(space)


def plan_evaluations(
    timesteps: int,
    episode_steps: int,
    fraction: float,
    points: int | None = None,
    episodes: int | None = None,
) -> tuple[int, int]:
    """``(evaluations, episodes per evaluation)`` for a run of ``timesteps`` steps.

    Given explicitly, each is kept. Left out, they are chosen so that the evaluations take at most
    ``fraction`` of the training steps (counting every episode at the env's step limit): up to 10
    evaluations of up to 5 episodes, more evaluations first, and never fewer than one evaluation of
    one episode (the final one).
    """
    budget = max(1, int(fraction * timesteps) // episode_steps)
    if points is None:
        points = max(1, min(10, budget // (episodes or 1)))
    if episodes is None:
        episodes = max(1, min(5, budget // points))
    return points, episodes


def set_torch_threads(n_threads: int) -> None:
    """Small networks on a CPU run faster on one thread than on many that contend for the cores."""
    import torch

    torch.set_num_threads(n_threads)


def check_writable_file(path: str, option: str) -> None:
    """Fail before any work if ``path`` cannot be written as a file."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path!r} is a directory; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ValueError(
            f"{option} {path!r} cannot be written ({str(existing)!r} is not a writable directory)"
        )


# ---------------------------------------------------------------------------- commands
def cmd_envs(args: argparse.Namespace) -> None:
    rows = []
    for env_id in sorted(k for k in gym.registry if k.startswith("AdvRL/")):
        env = gym.make(env_id)
        rows.append(
            (
                env_id,
                describe_space(env.observation_space),
                describe_space(env.action_space),
                f"{gym.spec(env_id).max_episode_steps} steps",
            )
        )
        env.close()
    for module in marl_modules():
        env = module.parallel_env()
        agent = env.possible_agents[0]
        limit = getattr(env.unwrapped, "max_cycles", "")
        name = f"gym_advrl.marl.{module.__name__.rsplit('.', 1)[-1]}"
        rows.append(
            (
                name,
                f"{len(env.possible_agents)} agents x {describe_space(env.observation_space(agent))}",
                describe_space(env.action_space(agent)),
                f"{limit} cycles",
            )
        )
        env.close()
    header = ("environment", "observation space", "action space", "episode limit")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def cmd_train(args: argparse.Namespace) -> None:
    cls = resolve_algorithm(args.algo)
    env_id = resolve_env(args.env)
    hyperparams = {**_hp_file(args.hp_file, cls), **parse_hyperparameters(args.hp, cls)}
    out = Path(args.out or f"runs/{cls.__name__.lower()}-{env_id.replace('/', '_')}-s{args.seed}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a directory")
    episode_steps = gym.spec(env_id).max_episode_steps or UNBOUNDED_EPISODE_STEPS
    eval_points, eval_episodes = plan_evaluations(
        args.timesteps, episode_steps, args.eval_fraction, args.eval_points, args.eval_episodes
    )
    set_torch_threads(args.torch_threads)

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(out)!r} cannot be created: {err.strerror}") from err
    try:
        model, policy, env, eval_env = _build_model(cls, env_id, args, out, hyperparams)
    except ValueError:
        if created:  # nothing half-written
            shutil.rmtree(out, ignore_errors=True)
        raise

    from sb3_ext.common.evaluation import random_policy_returns
    from sb3_ext.progress import EvalWithProgress, TrainingProgressBar

    warmup = int(getattr(model, "learning_starts", 0) or 0)
    random_return = float(np.mean(random_policy_returns(env_id, eval_episodes, seed=args.seed + 20_000)))
    config = {
        "algo": cls.__name__,
        "env": env_id,
        "seed": args.seed,
        "n_envs": args.n_envs,
        "policy": policy,
        "timesteps": args.timesteps,
        "hyperparameters": hyperparams,
        "learning_starts": warmup,
        "eval_points": eval_points,
        "eval_episodes": eval_episodes,
        "random_return": random_return,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str))
    print(
        f"{cls.__name__} on {env_id}: {args.timesteps:,} steps, {eval_points} evaluation(s) of {eval_episodes} episode(s) "
        f"(at most {eval_points * eval_episodes * episode_steps:,} steps); run directory {out}"
    )

    callbacks: list[Any] = []
    progress = None
    if not args.no_progress_bar:
        progress = TrainingProgressBar()
        callbacks.append(progress)
    eval_freq = max(args.timesteps // (eval_points * args.n_envs), 1)
    evaluation = EvalWithProgress(
        eval_env,
        progress=progress,
        eval_freq=eval_freq,
        n_eval_episodes=eval_episodes,
        log_path=str(out),
        verbose=0,
    )
    callbacks.append(evaluation)
    model.learn(total_timesteps=args.timesteps, callback=callbacks)
    model.save(out / MODEL_FILE)
    env.close()
    eval_env.close()

    summary = f"saved {out / MODEL_FILE}"
    if evaluation.evaluations_results:
        summary += f"; last evaluation mean return {np.mean(evaluation.evaluations_results[-1]):.2f} (random policy {random_return:.2f})"
    if importlib.util.find_spec("matplotlib") is not None:
        from sb3_ext.plotting import load_run, plot_runs

        label, run = load_run(out)
        png = plot_runs({label: [run]}, out / "learning_curve.png", title=f"{cls.__name__} on {env_id}")
        summary += f"; curve {png}"
    else:
        summary += '; no curve drawn (matplotlib is missing: pip install "gym-advrl[sb3]")'
    print(f"{summary}; TensorBoard: {out / 'tb'}")


def _hp_file(path: str | None, cls: type) -> dict[str, Any]:
    """The hyperparameters of a ``--hp-file`` YAML mapping (e.g. ``advrl tune``'s best configuration),
    checked as ``--hp`` checks its entries."""
    if path is None:
        return {}
    from sb3_ext.tuning.space import read_space_file

    try:
        return parse_hyperparameters(read_space_file(path, "--hp-file"), cls)
    except ValueError as err:
        message = str(err)
        raise ValueError(
            message if message.startswith("--hp-file") else f"--hp-file {path!r}: {message}"
        ) from None


def _build_model(
    cls: type, env_id: str, args: argparse.Namespace, out: Path, hyperparams: dict[str, Any]
) -> tuple[Any, str, Any, Any]:
    """The model, its policy alias and its training and evaluation VecEnvs; SB3's assertions
    (e.g. an action space the algorithm does not support) become ValueErrors."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    env = _training_env(env_id, args.n_envs, args.seed, out / "monitor")
    if isinstance(env, VecMonitor):  # the native vector path: evaluate on the same VecEnv type
        eval_env = VecMonitor(DummyVecEnv([lambda: gym.make(env_id)]))
        eval_env.seed(args.seed + 10_000)
    else:
        eval_env = make_vec_env(env_id, n_envs=1, seed=args.seed + 10_000)
    policy = args.policy or default_policy(cls, env.observation_space)
    try:
        model = cls(
            policy, env, seed=args.seed, tensorboard_log=str(out / "tb"), verbose=args.verbose, **hyperparams
        )
    except (AssertionError, TypeError, KeyError) as err:
        env.close()
        eval_env.close()
        raise ValueError(f"{cls.__name__} cannot train on {env_id} with these settings: {err}") from err
    except ValueError:
        env.close()
        eval_env.close()
        raise
    return model, policy, env, eval_env


def _training_env(env_id: str, n_envs: int, seed: int, monitor_dir: Path) -> Any:
    """``n_envs`` training envs: the env's native vector version (``gym.make_vec``, one array step
    for all, through ``GymnasiumVecEnv``) when it has one and ``n_envs > 1``, else SB3's
    ``make_vec_env``; monitored into ``monitor_dir`` either way."""
    from stable_baselines3.common.env_util import make_vec_env

    if n_envs > 1 and gym.spec(env_id).vector_entry_point is not None:
        from stable_baselines3.common.vec_env import VecMonitor

        from sb3_ext.common.vec_env import GymnasiumVecEnv

        monitor_dir.mkdir(parents=True, exist_ok=True)
        env = VecMonitor(GymnasiumVecEnv(gym.make_vec(env_id, n_envs)), filename=str(monitor_dir / "vector"))
        env.seed(seed)
        return env
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, monitor_dir=str(monitor_dir))


def load_model(path: str) -> tuple[Any, dict]:
    target = Path(path)
    config_dir = target if target.is_dir() else target.parent
    model_path = target / MODEL_FILE if target.is_dir() else target
    if not model_path.exists():
        raise ValueError(
            f"no saved model at {str(model_path)!r}; pass a run directory from 'advrl train' or a model .zip"
        )
    config_path = config_dir / CONFIG_FILE
    if not config_path.exists():
        raise ValueError(f"{str(config_path)!r} not found: it records which algorithm saved the model")
    config = json.loads(config_path.read_text())
    return resolve_algorithm(config["algo"]).load(model_path, device="cpu"), config


def cmd_eval(args: argparse.Namespace) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from sb3_ext.progress import finished_return

    if args.gif:
        if importlib.util.find_spec("imageio") is None:
            raise ValueError('--gif needs imageio: pip install "gym-advrl[gif]"')
        check_writable_file(args.gif, "--gif")
    set_torch_threads(args.torch_threads)
    model, config = load_model(args.model)
    env_id = resolve_env(args.env or config.get("env", ""))
    env = Monitor(gym.make(env_id, render_mode="rgb_array" if args.gif else None))
    env.reset(seed=args.seed)
    frames: list[np.ndarray] = []
    returns: list[float] = []
    print(f"evaluating {type(model).__name__} on {env_id} for {args.episodes} episodes", flush=True)

    def on_step(local_vars: dict, _globals: dict) -> None:
        if args.gif and len(frames) < args.gif_frames:
            frames.append(env.render())
        episode_return = finished_return(local_vars)
        if episode_return is not None:
            returns.append(episode_return)
            print(
                f"  episode {len(returns)}/{args.episodes}: return {returns[-1]:.2f}, mean so far {np.mean(returns):.2f}",
                flush=True,
            )

    episode_returns, _ = evaluate_policy(
        model,
        env,
        n_eval_episodes=args.episodes,
        deterministic=not args.stochastic,
        return_episode_rewards=True,
        callback=on_step,
    )
    print(
        f"{type(model).__name__} on {env_id}: mean return {np.mean(episode_returns):.2f} +- {np.std(episode_returns):.2f} "
        f"over {args.episodes} episodes"
    )
    if args.gif:
        import imageio.v2 as imageio

        Path(args.gif).parent.mkdir(parents=True, exist_ok=True)
        imageio.mimsave(args.gif, frames, duration=1000 / env.metadata.get("render_fps", 30))
        print(f"wrote {args.gif} ({len(frames)} frames)")


def cmd_plot(args: argparse.Namespace) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError('plotting needs matplotlib: pip install "gym-advrl[sb3]"')
    check_writable_file(args.out, "--out")
    from sb3_ext.plotting import load_run, plot_runs

    groups: dict[str, list] = defaultdict(list)  # one group per algorithm, one run per seed
    envs = set()
    for run in args.runs:
        label, data = load_run(run)
        config_path = Path(run) / CONFIG_FILE
        envs.add(json.loads(config_path.read_text()).get("env", "") if config_path.exists() else "")
        groups[label].append(data)
    png = plot_runs(
        groups, args.out, title=" / ".join(sorted(e for e in envs if e)), smoothing=args.smoothing
    )
    print(f"wrote {png}: " + ", ".join(f"{label} ({len(runs)} runs)" for label, runs in groups.items()))


# ---------------------------------------------------------------------------- entry point
class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (exit status 2), without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="advrl", description="gym-advrl: environments and SB3 algorithms from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{envs,train,eval,plot,tune}")

    envs = sub.add_parser("envs", help="table of every AdvRL/ and gym_advrl.marl environment")
    envs.set_defaults(func=cmd_envs)

    train = sub.add_parser("train", help="train an algorithm on an environment")
    train.add_argument("algo", help="algorithm, e.g. WorldModelMPC, PERDQN, PPO, SAC (case-insensitive)")
    train.add_argument("env", help="environment id, e.g. AdvRL/Pendulum-v0")
    train.add_argument(
        "--timesteps", type=_integer(1), default=10_000, help="environment steps (default 10000)"
    )
    train.add_argument("--seed", type=_integer(0), default=0)
    train.add_argument(
        "--n-envs",
        type=_integer(1),
        default=1,
        help="parallel environments (default 1); more than 1 uses the env's native vector version when it has one",
    )
    train.add_argument("--out", help="run directory (default runs/<algo>-<env>-s<seed>)")
    train.add_argument("--policy", help="policy alias (default: chosen from the observation space)")
    train.add_argument(
        "--hp",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm hyperparameters as Python literals, e.g. learning_rate=3e-4 policy_kwargs={'net_arch':[64]}",
    )
    train.add_argument(
        "--hp-file",
        metavar="YAML",
        help="hyperparameters from a YAML mapping, e.g. the best_hyperparameters.yml of 'advrl tune' (--hp wins)",
    )
    train.add_argument(
        "--eval-fraction",
        type=_fraction,
        default=EVAL_FRACTION,
        help="share of the training steps the evaluations may take when --eval-points/--eval-episodes "
        f"are left out (default {EVAL_FRACTION}; every episode counted at the env's step limit)",
    )
    train.add_argument(
        "--eval-points",
        type=_integer(1),
        default=None,
        help="deterministic evaluations during training (default: up to 10 within --eval-fraction)",
    )
    train.add_argument(
        "--eval-episodes",
        type=_integer(1),
        default=None,
        help="episodes per evaluation (default: up to 5 within --eval-fraction)",
    )
    train.add_argument(
        "--torch-threads",
        type=_integer(1),
        default=1,
        help="torch CPU threads (default 1: small networks run faster on one thread)",
    )
    train.add_argument("--no-progress-bar", action="store_true")
    train.add_argument("--verbose", type=_integer(0), default=0)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a trained model (mean +- std return, optional GIF)")
    evaluate.add_argument("model", help="run directory written by 'advrl train', or its model.zip")
    evaluate.add_argument("env", nargs="?", help="environment id (default: the one the run was trained on)")
    evaluate.add_argument("--episodes", type=_integer(1), default=10)
    evaluate.add_argument("--seed", type=_integer(0), default=0)
    evaluate.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of deterministic ones"
    )
    evaluate.add_argument("--gif", help="write a GIF of the evaluation episodes to this file (needs imageio)")
    evaluate.add_argument("--gif-frames", type=_integer(1), default=300)
    evaluate.add_argument(
        "--torch-threads", type=_integer(1), default=1, help="torch CPU threads (default 1)"
    )
    evaluate.set_defaults(func=cmd_eval)

    plot = sub.add_parser(
        "plot", help="one PNG comparing runs: evaluations (mean +- std over seeds) and training episodes"
    )
    plot.add_argument("runs", nargs="+", help="run directories written by 'advrl train'")
    plot.add_argument("--out", default="learning_curves.png")
    plot.add_argument(
        "--smoothing",
        type=_integer(1),
        default=10,
        help="centered moving-average window over training episodes (1: none; default 10)",
    )
    plot.set_defaults(func=cmd_plot)
    from sb3_ext.tuning.command import add_tune_parser

    add_tune_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:
        print(f"advrl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
