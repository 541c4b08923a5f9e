"""``advrl tune``: its command-line options and the command, which checks everything before Ray starts,
runs the sweep (:mod:`sb3_ext.tuning.sweep`) and writes the run directory (:mod:`sb3_ext.tuning.results`)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import gymnasium as gym

from sb3_ext.cli import (
    EVAL_FRACTION,
    UNBOUNDED_EPISODE_STEPS,
    _fraction,
    _integer,
    default_policy,
    plan_evaluations,
    resolve_algorithm,
    resolve_env,
    set_torch_threads,
)
from sb3_ext.tuning.space import SCHEDULERS


def add_tune_parser(sub: Any) -> None:
    """The ``advrl tune`` subcommand, added to ``advrl``'s subparsers."""
    tune = sub.add_parser(
        "tune",
        help="Ray Tune sweep of an algorithm's hyperparameters (needs the [ray] extra)",
        description="Sweep hyperparameters on Ray Tune, on a local Ray cluster or one joined with --address. "
        "One CPU per trial (torch on one thread); trials report periodic evaluations to the scheduler. The run "
        "directory gets trials.md (trials sorted by score), best_hyperparameters.yml (for 'advrl train "
        "--hp-file') and trial_curves.png.",
    )
    tune.add_argument("algo", help="algorithm, e.g. PERDQN, PPO, SAC (case-insensitive)")
    tune.add_argument("env", help="environment id, e.g. CartPole-v1 or AdvRL/GridWorld-v0")
    tune.add_argument(
        "--hp",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="search space: literals as for 'advrl train --hp', or loguniform(low, high), uniform(low, high), "
        "choice([v1, v2, ...]), e.g. learning_rate=loguniform(1e-4,1e-2) batch_size=choice([32,64])",
    )
    tune.add_argument(
        "--space",
        metavar="YAML",
        help="search space from a YAML mapping of the same entries (--hp adds to it)",
    )
    tune.add_argument("--num-samples", type=_integer(1), default=8, help="trials to sample (default 8)")
    tune.add_argument("--timesteps", type=_integer(1), default=10_000, help="environment steps per trial")
    tune.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="asha",
        help="asha: stop weak trials early at rungs of steps (default); fifo: run every trial to the end",
    )
    tune.add_argument(
        "--address",
        help="join this Ray cluster (HOST:PORT of 'ray start --head', 'auto' or ray://...); default: start a local one",
    )
    tune.add_argument(
        "--cpus",
        type=_integer(1),
        default=None,
        help="CPUs of the local cluster (default: all; not with --address)",
    )
    tune.add_argument(
        "--max-concurrent",
        type=_integer(1),
        default=None,
        help="trials running at once (default: as many as the cluster has CPUs)",
    )
    tune.add_argument("--seed", type=_integer(0), default=0, help="seed of every trial (default 0)")
    tune.add_argument("--out", help="run directory (default runs/tune-<algo>-<env>)")
    tune.add_argument("--policy", help="policy alias (default: chosen from the observation space)")
    tune.add_argument(
        "--eval-fraction",
        type=_fraction,
        default=EVAL_FRACTION,
        help=f"share of each trial's steps its evaluations may take (default {EVAL_FRACTION})",
    )
    tune.add_argument(
        "--eval-points", type=_integer(1), default=None, help="evaluations per trial (default: up to 10)"
    )
    tune.add_argument(
        "--eval-episodes", type=_integer(1), default=None, help="episodes per evaluation (default: up to 5)"
    )
    tune.add_argument(
        "--verbose", type=_integer(0), default=0, help="Ray Tune's progress output (0: none, 1, 2)"
    )
    tune.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> None:
    """A Ray Tune sweep; every check runs before Ray starts, and a local cluster is shut down at the end."""
    if importlib.util.find_spec("ray") is None:
        raise ValueError('advrl tune needs Ray: pip install "gym-advrl[ray]"')
    from sb3_ext.tuning import results
    from sb3_ext.tuning.space import parse_search_space, read_space_file
    from sb3_ext.tuning.sweep import SweepSettings, check_address, run_sweep, start_ray

    cls = resolve_algorithm(args.algo)
    env_id = resolve_env(args.env)
    pairs = (read_space_file(args.space, "--space") if args.space else []) + args.hp
    fixed, searched = parse_search_space(pairs, cls)
    out = Path(args.out or f"runs/tune-{cls.__name__.lower()}-{env_id.replace('/', '_')}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a directory")
    if args.address and args.cpus is not None:
        raise ValueError("--cpus sets the CPUs of a local cluster; leave it out with --address")
    if args.address:
        check_address(args.address)
    episode_steps = gym.spec(env_id).max_episode_steps or UNBOUNDED_EPISODE_STEPS
    eval_points, eval_episodes = plan_evaluations(
        args.timesteps, episode_steps, args.eval_fraction, args.eval_points, args.eval_episodes
    )
    set_torch_threads(1)
    probe = gym.make(env_id)
    policy = args.policy or default_policy(cls, probe.observation_space)
    probe.close()
    _check_buildable(cls, env_id, policy, fixed)
    settings = SweepSettings(
        algo=cls.__name__,
        env_id=env_id,
        policy=policy,
        timesteps=args.timesteps,
        eval_freq=max(args.timesteps // eval_points, 1),
        eval_episodes=eval_episodes,
        seed=args.seed,
        fixed=fixed,
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(out)!r} cannot be created: {err.strerror}") from err
    print(
        f"sweeping {cls.__name__} on {env_id}: {args.num_samples} trial(s) of {args.timesteps:,} steps, "
        f"{eval_points} evaluation(s) of {eval_episodes} episode(s) each, scheduler {args.scheduler}, "
        f"searching {', '.join(f'{k}={v}' for k, v in searched.items()) or 'nothing (fixed hyperparameters)'}; "
        f"Ray cluster {args.address or 'local'}; run directory {out}",
        flush=True,
    )
    import ray

    start_ray(args.address, args.cpus)
    try:
        records = run_sweep(
            settings,
            searched,
            num_samples=args.num_samples,
            scheduler=args.scheduler,
            max_concurrent=args.max_concurrent,
            storage=out,
            verbose=args.verbose,
        )
    finally:
        ray.shutdown()

    table = results.trial_table(records, args.timesteps)
    (out / results.TABLE_FILE).write_text(table)
    sweep_config = {
        "algo": cls.__name__,
        "env": env_id,
        "policy": policy,
        "timesteps": args.timesteps,
        "seed": args.seed,
        "fixed": fixed,
        "searched": {k: str(v) for k, v in searched.items()},
        "num_samples": args.num_samples,
        "scheduler": args.scheduler,
        "address": args.address or "local",
    }
    results.write_records(out / results.RECORDS_FILE, records, sweep_config)
    results.plot_trials(
        out / results.PLOT_FILE, records, f"{cls.__name__} on {env_id}: {len(records)} trials"
    )
    print(table, end="")
    best = results.best_record(records)
    crashed = sum(1 for record in records if record.error)
    summary = f"{len(records)} trial(s), {crashed} crashed; table {out / results.TABLE_FILE}, curves {out / results.PLOT_FILE}"
    if best is None:
        raise ValueError(f"no trial reached an evaluation ({summary})")
    best_file = out / results.BEST_FILE
    command = f"advrl train {cls.__name__} {env_id} --timesteps {args.timesteps} --seed {args.seed} --hp-file {best_file}"
    results.write_best_hyperparameters(best_file, {**fixed, **best.hyperparameters}, command, best.score)
    print(f"{summary}; best trial {best.trial_id} (best evaluation {best.score:.2f}): {best_file}")
    print(f"retrain it: {command}")


def _check_buildable(cls: type, env_id: str, policy: str, hyperparams: dict[str, Any]) -> None:
    """Build the algorithm once with the fixed hyperparameters, so that a combination no trial could
    train (e.g. DQN on continuous actions) is reported before Ray starts."""
    env = gym.make(env_id)
    try:
        cls(policy, env, verbose=0, **hyperparams)
    except (AssertionError, TypeError, KeyError) as err:
        raise ValueError(f"{cls.__name__} cannot train on {env_id} with these settings: {err}") from err
    finally:
        env.close()
