"""``advrl``: list environments, train, evaluate and plot, in the spirit of rl-zoo3's ``train.py``.

    advrl envs
    advrl train WorldModelMPC AdvRL/Pendulum-v0 --timesteps 3000 --out runs/mpc
    advrl eval runs/mpc AdvRL/Pendulum-v0 --episodes 10 --gif pendulum.gif
    advrl plot runs/mpc-s0 runs/mpc-s1 runs/sac-s0 --out compare.png
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import pkgutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"


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
        raise ValueError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(c.__name__ for c in table.values()))}")
    return cls


def resolve_env(env_id: str) -> str:
    if env_id not in gym.registry:
        ours = ", ".join(sorted(k for k in gym.registry if k.startswith("AdvRL/")))
        raise ValueError(f"unknown environment {env_id!r}; the AdvRL environments are: {ours} (any registered Gymnasium id works too)")
    return env_id


def marl_modules() -> list[Any]:
    """The ``gym_advrl.marl`` environment modules (``*_v<N>``), if the multi-agent package is present."""
    try:
        marl = importlib.import_module("gym_advrl.marl")
    except ImportError:
        return []
    names = sorted(info.name for info in pkgutil.iter_modules(marl.__path__) if info.name[-3:-1] == "_v")
    return [importlib.import_module(f"gym_advrl.marl.{name}") for name in names]


def parse_hyperparameters(pairs: list[str], cls: type) -> dict[str, Any]:
    """``key=value`` strings -> kwargs of ``cls``; values are Python literals, else plain strings."""
    reserved = {"self", "policy", "env", "kwargs", "args", "seed", "tensorboard_log", "verbose"}
    allowed = sorted(p for p in inspect.signature(cls.__init__).parameters if p not in reserved and not p.startswith("_"))
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--hp expects key=value, got {pair!r}")
        if key not in allowed:
            raise ValueError(f"unknown hyperparameter {key!r} for {cls.__name__}; valid ones: {', '.join(allowed)}")
        try:
            params[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[key] = raw
    return params


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


# ---------------------------------------------------------------------------- commands
def cmd_envs(args: argparse.Namespace) -> None:
    rows = []
    for env_id in sorted(k for k in gym.registry if k.startswith("AdvRL/")):
        env = gym.make(env_id)
        rows.append((env_id, describe_space(env.observation_space), describe_space(env.action_space), f"{gym.spec(env_id).max_episode_steps} steps"))
        env.close()
    for module in marl_modules():
        env = module.parallel_env()
        agent = env.possible_agents[0]
        limit = getattr(env.unwrapped, "max_cycles", "")
        name = f"gym_advrl.marl.{module.__name__.rsplit('.', 1)[-1]}"
        rows.append((name, f"{len(env.possible_agents)} agents x {describe_space(env.observation_space(agent))}",
                     describe_space(env.action_space(agent)), f"{limit} cycles"))
        env.close()
    header = ("environment", "observation space", "action space", "episode limit")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def cmd_train(args: argparse.Namespace) -> None:
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env

    cls = resolve_algorithm(args.algo)
    env_id = resolve_env(args.env)
    hyperparams = parse_hyperparameters(args.hp, cls)
    out = Path(args.out or f"runs/{cls.__name__.lower()}-{env_id.replace('/', '_')}-s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)

    env = make_vec_env(env_id, n_envs=args.n_envs, seed=args.seed, monitor_dir=str(out / "monitor"))
    eval_env = make_vec_env(env_id, n_envs=1, seed=args.seed + 10_000)
    policy = args.policy or default_policy(cls, env.observation_space)
    model = cls(policy, env, seed=args.seed, tensorboard_log=str(out / "tb"), verbose=args.verbose, **hyperparams)
    eval_freq = max(args.timesteps // (args.eval_points * args.n_envs), 1)
    callback = EvalCallback(eval_env, eval_freq=eval_freq, n_eval_episodes=args.eval_episodes, log_path=str(out), verbose=0)
    config = {"algo": cls.__name__, "env": env_id, "seed": args.seed, "n_envs": args.n_envs, "policy": policy,
              "timesteps": args.timesteps, "hyperparameters": hyperparams}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str))
    model.learn(total_timesteps=args.timesteps, callback=callback, progress_bar=not args.no_progress_bar)
    model.save(out / MODEL_FILE)
    env.close()

    from sb3_ext.plotting import load_curve, plot_curves

    png = plot_curves({cls.__name__: [load_curve(out / "monitor")]}, out / "learning_curve.png", title=f"{cls.__name__} on {env_id}")
    last = np.mean(callback.evaluations_results[-1]) if callback.evaluations_results else float("nan")
    print(f"saved {out / MODEL_FILE}; last evaluation mean return {last:.2f}; curve {png}; TensorBoard: {out / 'tb'}")


def load_model(path: str) -> tuple[Any, dict]:
    target = Path(path)
    config_dir = target if target.is_dir() else target.parent
    model_path = target / MODEL_FILE if target.is_dir() else target
    if not model_path.exists():
        raise ValueError(f"no saved model at {str(model_path)!r}; pass a run directory from 'advrl train' or a model .zip")
    config_path = config_dir / CONFIG_FILE
    if not config_path.exists():
        raise ValueError(f"{str(config_path)!r} not found: it records which algorithm saved the model")
    config = json.loads(config_path.read_text())
    return resolve_algorithm(config["algo"]).load(model_path, device="cpu"), config


def cmd_eval(args: argparse.Namespace) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    model, _ = load_model(args.model)
    env_id = resolve_env(args.env)
    env = Monitor(gym.make(env_id, render_mode="rgb_array" if args.gif else None))
    env.reset(seed=args.seed)
    frames: list[np.ndarray] = []

    def grab(_locals: dict, _globals: dict) -> None:
        if args.gif and len(frames) < args.gif_frames:
            frames.append(env.render())

    returns, _ = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=not args.stochastic,
                                 return_episode_rewards=True, callback=grab)
    print(f"{type(model).__name__} on {env_id}: mean return {np.mean(returns):.2f} +- {np.std(returns):.2f} over {args.episodes} episodes")
    if args.gif:
        try:
            import imageio.v2 as imageio
        except ImportError as err:
            raise ValueError('--gif needs imageio: pip install "gym-advrl[gif]"') from err
        imageio.mimsave(args.gif, frames, duration=1000 / env.metadata.get("render_fps", 30))
        print(f"wrote {args.gif} ({len(frames)} frames)")


def cmd_plot(args: argparse.Namespace) -> None:
    from sb3_ext.plotting import load_curve, plot_curves

    groups: dict[str, list] = defaultdict(list)
    envs = set()
    for run in args.runs:
        run_dir = Path(run)
        if not run_dir.is_dir():
            raise ValueError(f"run directory {run!r} does not exist")
        config_path = run_dir / CONFIG_FILE
        config = json.loads(config_path.read_text()) if config_path.exists() else {"algo": run_dir.name, "env": ""}
        envs.add(config["env"])
        groups[config["algo"]].append(load_curve(run_dir))
    png = plot_curves(groups, args.out, title=" / ".join(sorted(e for e in envs if e)), smoothing=args.smoothing)
    print(f"wrote {png}: " + ", ".join(f"{label} ({len(runs)} runs)" for label, runs in groups.items()))


# ---------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advrl", description="gym-advrl: environments and SB3 algorithms from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{envs,train,eval,plot}")

    envs = sub.add_parser("envs", help="table of every AdvRL/ and gym_advrl.marl environment")
    envs.set_defaults(func=cmd_envs)

    train = sub.add_parser("train", help="train an algorithm on an environment")
    train.add_argument("algo", help="algorithm, e.g. WorldModelMPC, PERDQN, PPO, SAC (case-insensitive)")
    train.add_argument("env", help="environment id, e.g. AdvRL/Pendulum-v0")
    train.add_argument("--timesteps", type=int, default=10_000, help="environment steps (default 10000)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--n-envs", type=int, default=1, help="parallel environments (default 1)")
    train.add_argument("--out", help="run directory (default runs/<algo>-<env>-s<seed>)")
    train.add_argument("--policy", help="policy alias (default: chosen from the observation space)")
    train.add_argument("--hp", nargs="*", default=[], metavar="KEY=VALUE", help="algorithm hyperparameters, e.g. learning_rate=3e-4")
    train.add_argument("--eval-points", type=int, default=10, help="evaluations during training (default 10)")
    train.add_argument("--eval-episodes", type=int, default=5)
    train.add_argument("--no-progress-bar", action="store_true")
    train.add_argument("--verbose", type=int, default=0)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a trained model (mean +- std return, optional GIF)")
    evaluate.add_argument("model", help="run directory written by 'advrl train', or its model.zip")
    evaluate.add_argument("env", help="environment id")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of deterministic ones")
    evaluate.add_argument("--gif", help="write a GIF of the evaluation episodes to this file (needs imageio)")
    evaluate.add_argument("--gif-frames", type=int, default=300)
    evaluate.set_defaults(func=cmd_eval)

    plot = sub.add_parser("plot", help="one PNG comparing runs (mean +- std over seeds of the same algorithm)")
    plot.add_argument("runs", nargs="+", help="run directories written by 'advrl train'")
    plot.add_argument("--out", default="learning_curves.png")
    plot.add_argument("--smoothing", type=int, default=10, help="moving-average window in episodes")
    plot.set_defaults(func=cmd_plot)
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
