"""A Ray Tune sweep of one SB3 / sb3_ext algorithm on one env: what ``advrl tune`` runs.

Each trial is :func:`run_trial` on one CPU (torch on one thread): it builds the algorithm with the
sweep's fixed hyperparameters and its own sampled ones, trains, and reports every periodic
deterministic evaluation through :class:`~sb3_ext.tuning.results.EvalReportCallback`. The ASHA
scheduler compares trials on those reports at rungs of environment steps and stops the weaker ones
early. A trial that raises is recorded with its error; the sweep goes on (``max_failures=0``,
``fail_fast=False``).

The sweep joins the cluster at ``address`` (``ray start --head`` on one machine, ``ray start
--address`` on the others) or starts a local one that it shuts down at the end. Ray is imported
only here, inside the functions.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_ext.tuning.results import METRIC, TIME_ATTR, TrialRecord
from sb3_ext.tuning.space import Distribution

#: Seconds to wait for a TCP answer from ``--address`` before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0


@dataclass
class SweepSettings:
    """Everything a trial needs besides its sampled hyperparameters (sent to every trial).

    :param algo: algorithm class name, e.g. ``"PERDQN"``.
    :param env_id: Gymnasium id.
    :param policy: policy alias.
    :param timesteps: environment steps per trial.
    :param eval_freq: steps between evaluations.
    :param eval_episodes: episodes per evaluation.
    :param seed: seed of every trial (trials differ by their hyperparameters only).
    :param fixed: hyperparameters shared by every trial.
    """

    algo: str
    env_id: str
    policy: str
    timesteps: int
    eval_freq: int
    eval_episodes: int
    seed: int
    fixed: dict[str, Any] = field(default_factory=dict)


def run_trial(config: dict[str, Any], settings: SweepSettings) -> None:
    """One trial (a Ray Tune function trainable): :func:`train_trial`, reporting to Tune with the node's id."""
    import ray
    from ray import tune

    train_trial(config, settings, tune.report, extra={"node_id": ray.get_runtime_context().get_node_id()})


def train_trial(
    config: dict[str, Any],
    settings: SweepSettings,
    report: Callable[[dict[str, Any]], Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Train ``settings.algo`` with the fixed and the sampled hyperparameters on one CPU thread, and
    pass every periodic evaluation to ``report`` (Ray aside, exactly what a trial does)."""
    import torch

    torch.set_num_threads(1)  # one CPU per trial
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env

    import gym_advrl  # noqa: F401  (registers the AdvRL/ ids in this worker)
    from sb3_ext.cli import resolve_algorithm
    from sb3_ext.tuning.results import EvalReportCallback

    cls = resolve_algorithm(settings.algo)
    env = make_vec_env(settings.env_id, n_envs=1, seed=settings.seed)
    eval_env = make_vec_env(settings.env_id, n_envs=1, seed=settings.seed + 10_000)
    try:
        model = cls(settings.policy, env, seed=settings.seed, verbose=0, **settings.fixed, **config)
        evaluation = EvalCallback(
            eval_env,
            eval_freq=settings.eval_freq,
            n_eval_episodes=settings.eval_episodes,
            callback_after_eval=EvalReportCallback(report, extra=extra),
            verbose=0,
        )
        model.learn(total_timesteps=settings.timesteps, callback=evaluation)
    finally:
        env.close()
        eval_env.close()


def check_address(address: str) -> None:
    """Fail fast, before Ray starts anything, if nothing listens at ``host:port``.

    ``"auto"`` and ``ray://`` (Ray Client) addresses are left to Ray.
    """
    if address == "auto" or address.startswith("ray://"):
        return
    match = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d+)", address)
    if match is None:
        raise ValueError(
            f"--address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379), 'auto' or ray://..."
        )
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(
            f"--address {address!r}: no Ray cluster answers there ({reason}); start one with "
            f"'ray start --head --port {port}' or leave --address out for a local one"
        ) from None


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join the cluster at ``address``, or start a local one with ``num_cpus`` CPUs (dashboard and usage
    statistics off, workers' output not forwarded).

    Joining fails with one ``ValueError``: Ray's own retries, which its core writes to the process's
    stderr while it waits, are held back and shown only if the join succeeds.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if not address:
        ray.init(num_cpus=num_cpus, **options)
        return
    failure: BaseException | None = None
    with _held_stderr() as held:
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, TimeoutError) as err:
            failure = err
            ray.shutdown()
    if failure is None:
        sys.stderr.write(held.getvalue())
        return
    first = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
    hint = ""
    if os.environ.get("RAY_AUTH_MODE") != "token":
        hint = " (a cluster started by 'ray start' with a token checks it: set RAY_AUTH_MODE=token)"
    raise ValueError(f"--address {address!r}: cannot join the Ray cluster: {first}{hint}")


@contextmanager
def _held_stderr() -> Iterator[io.StringIO]:
    """Redirect file descriptor 2 (Python's and native code's stderr) to a temporary file; its text is
    in the yielded buffer once the block ends."""
    held = io.StringIO()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            held.write(capture.read().decode(errors="replace"))


def run_sweep(
    settings: SweepSettings,
    searched: dict[str, Distribution],
    *,
    num_samples: int,
    scheduler: str,
    max_concurrent: int | None,
    storage: Path,
    verbose: int = 0,
) -> list[TrialRecord]:
    """Run the sweep on the Ray cluster this process has joined; one record per trial."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    trainable = tune.with_resources(tune.with_parameters(run_trial, settings=settings), {"cpu": 1})
    tune_scheduler = None
    if scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        tune_scheduler = ASHAScheduler(
            time_attr=TIME_ATTR,
            max_t=settings.timesteps,
            grace_period=min(settings.timesteps, max(settings.eval_freq, settings.timesteps // 4)),
            reduction_factor=2,
        )
    tuner = tune.Tuner(
        trainable,
        param_space={name: distribution.to_ray() for name, distribution in searched.items()},
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            num_samples=num_samples,
            scheduler=tune_scheduler,
            # Samples drawn from the sweep's seed, so that the same command samples the same trials.
            search_alg=BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=settings.seed),
            # A finished trial's worker process (torch and SB3 imported) runs the next trial.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="trials",
            storage_path=str(storage.resolve()),
            verbose=verbose,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    return [record_of(result) for result in tuner.fit()]


def record_of(result: Any) -> TrialRecord:
    """A :class:`TrialRecord` from a Ray Tune ``Result``."""
    frame = result.metrics_dataframe
    reported = frame is not None and METRIC in getattr(frame, "columns", ())
    if reported:
        frame = frame.dropna(subset=[METRIC])
    metrics = result.metrics or {}
    trial_id = metrics.get("trial_id") or _trial_id_from_path(result.path)
    return TrialRecord(
        trial_id=str(trial_id),
        hyperparameters=dict(result.config or {}),
        timesteps=[int(t) for t in frame[TIME_ATTR]] if reported else [],
        returns=[float(r) for r in frame[METRIC]] if reported else [],
        node_id=str(metrics.get("node_id", "")),
        error=error_line(result.error) if result.error is not None else "",
        wall_s=float(metrics.get("time_total_s", 0.0) or 0.0),
    )


def error_line(error: BaseException) -> str:
    """The line of a trial's error that says what went wrong (``ValueError: ...``), not Ray's wrapping."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", line):
            return line
    return lines[-1] if lines else type(error).__name__


def _trial_id_from_path(path: str | None) -> str:
    match = re.search(r"_([0-9a-f]{5}_\d{5})", str(path or ""))
    return match.group(1) if match else Path(str(path)).name
