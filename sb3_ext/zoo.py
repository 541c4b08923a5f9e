"""rl-zoo3 integration: every ``sb3_ext`` algorithm under rl-zoo3's lower-case names, with tuned
hyperparameter files and Optuna samplers.

rl-zoo3 checks ``--algo`` against its table before it imports ``--gym-packages``, so its own
``python -m rl_zoo3.train`` cannot see algorithms registered by an imported package. This module's
entry point registers them first and then runs rl-zoo3's own ``train`` or ``enjoy`` with the
arguments unchanged::

    python -m sb3_ext.zoo train --algo perdqn --env CartPole-v1
    python -m sb3_ext.zoo train --algo dyna --env AdvRL/GridWorld-v0 -optimize --n-trials 20
    python -m sb3_ext.zoo enjoy --algo perdqn --env CartPole-v1 -f logs

What it adds to rl-zoo3's command line, each only when not given:

* ``-conf``: this package's tuned file ``sb3_ext/hyperparams/<algo>.yml`` when it has settings for
  ``--env`` (the values behind the benchmarks), else rl-zoo3's own;
* ``--num-threads 1``: small networks on a CPU run faster on one torch thread;
* ``--gym-packages sb3_ext.zoo``, so that rl-zoo3 records how to find the algorithms and envs;
* ``--eval-env-kwargs`` equal to the config file's ``env_kwargs``: rl-zoo3 2.x gives the file's
  ``env_kwargs`` to the training env only, so its evaluations (and Optuna's) would otherwise run
  on the env's defaults, e.g. a 5x5 grid for an agent trained on 8x8.

Importing the module (``import sb3_ext.zoo``, or ``--gym-packages sb3_ext.zoo`` in a process that
built rl-zoo3's parser after the import) registers the algorithms, the ``AdvRL/`` environments and
the Optuna samplers (``-optimize``) in rl-zoo3's tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import rl_zoo3
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError('sb3_ext.zoo needs rl-zoo3: pip install "gym-advrl[zoo]"') from err

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
import sb3_ext

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
COMMANDS = ("train", "enjoy")

#: rl-zoo3 name -> algorithm class, for every algorithm ``sb3_ext`` exports.
ALGORITHMS: dict[str, type] = {
    name.lower(): getattr(sb3_ext, name)
    for name in (
        "PERDQN",
        "PERQRDQN",
        "PERSAC",
        "PERTD3",
        "AuxDQN",
        "PERAuxDQN",
        "Dyna",
        "TabularDynaQ",
        "OptionCritic",
        "FeudalAgent",
        "WorldModelMPC",
        "MBPO",
        "Dreamer",
        "LatentMPC",
        "HAC",
    )
}

# ---------------------------------------------------------------------------- Optuna samplers
# Each algorithm's search space is rl-zoo3's for the algorithm it extends (DQN, QR-DQN, SAC, TD3),
# plus its own arguments. A sampled trial's raw parameters convert back to constructor arguments
# (rl-zoo3 does this when it loads a study's best trial), so each extra is a named distribution.
Distribution = tuple[
    str, Any, Any
]  # ("float", low, high), ("logfloat", low, high), ("int", low, high), ("choice", values, None)

PER = {"per_alpha": ("float", 0.4, 0.9), "per_beta": ("float", 0.2, 0.7)}
AUX = {
    "reward_coef": ("logfloat", 0.01, 1.0),
    "latent_coef": ("logfloat", 0.01, 1.0),
    "inverse_coef": ("logfloat", 0.01, 1.0),
}
DYNA = {
    "planning_steps": ("int", 1, 20),
    "real_ratio": ("float", 0.2, 0.9),
    "planning_updates": ("int", 1, 16),
}
GAMMA = {"one_minus_gamma": ("logfloat", 1e-3, 0.1)}
TABULAR = {"learning_rate": ("logfloat", 0.01, 1.0), "planning_steps": ("int", 0, 100), **GAMMA}
OPTIONS = {
    "learning_rate": ("logfloat", 1e-4, 3e-3),
    "n_steps": ("choice", (5, 8, 16, 32), None),
    "n_options": ("int", 2, 8),
    "termination_reg": ("float", 0.0, 0.05),
    "ent_coef": ("logfloat", 1e-4, 0.05),
    **GAMMA,
}
MBPO_SPACE = {
    "real_ratio": ("float", 0.05, 0.5),
    "utd_ratio": ("choice", (5, 10, 20), None),
    "model_train_freq": ("choice", (100, 250, 500), None),
}
PLANNER = {
    "learning_rate": ("logfloat", 1e-4, 3e-3),
    "horizon": ("int", 5, 30),
    "population_size": ("choice", (50, 100, 200), None),
    "n_iterations": ("int", 1, 5),
}
DREAMER = {
    "learning_rate": ("logfloat", 1e-4, 1e-3),
    "actor_learning_rate": ("logfloat", 3e-5, 3e-4),
    "critic_learning_rate": ("logfloat", 3e-5, 3e-4),
    "train_ratio": ("choice", (16, 32, 64, 128), None),
    "imagination_horizon": ("int", 5, 20),
    "ent_coef": ("logfloat", 1e-4, 1e-2),
}
LATENT_PLANNER = {
    "learning_rate": ("logfloat", 1e-4, 3e-3),
    "train_ratio": ("choice", (16, 32, 64, 128), None),
    "horizon": ("int", 5, 20),
    "population_size": ("choice", (100, 200, 500), None),
    "n_iterations": ("int", 1, 8),
}
# FeudalAgent needs n_steps >= c: every n_steps choice is at least the largest c.
FEUDAL = {
    "learning_rate": ("logfloat", 1e-4, 3e-3),
    "c": ("choice", (4, 8, 10), None),
    "n_steps": ("choice", (16, 20, 32), None),
    "alpha": ("float", 0.0, 1.0),
    "gamma_manager": ("float", 0.95, 0.999),
    "gamma_worker": ("float", 0.9, 0.99),
    "ent_coef": ("logfloat", 1e-4, 0.05),
}
HIERARCHY = {
    "learning_rate": ("logfloat", 1e-4, 3e-3),
    "subgoal_horizon": ("int", 4, 20),
    "subgoal_test_rate": ("float", 0.0, 0.5),
    "n_sampled_goal": ("int", 1, 8),
    "batch_size": ("choice", (32, 64, 128, 256), None),
    **GAMMA,
}

#: rl-zoo3 name -> (rl-zoo3 algorithm whose search space it extends, or None; its own distributions).
SEARCH_SPACES: dict[str, tuple[str | None, dict[str, Distribution]]] = {
    "perdqn": ("dqn", PER),
    "perqrdqn": ("qrdqn", PER),
    "persac": ("sac", PER),
    "pertd3": ("td3", PER),
    "auxdqn": ("dqn", AUX),
    "perauxdqn": ("dqn", {**AUX, **PER}),
    "dyna": ("dqn", DYNA),
    "tabulardynaq": (None, TABULAR),
    "optioncritic": (None, OPTIONS),
    "worldmodelmpc": (None, PLANNER),
    "mbpo": ("sac", MBPO_SPACE),
    "dreamer": (None, DREAMER),
    "latentmpc": (None, LATENT_PLANNER),
    "feudalagent": (None, FEUDAL),
    "hac": (None, HIERARCHY),
}


def suggest(trial: Any, distributions: dict[str, Distribution]) -> dict[str, Any]:
    """One value per distribution from an Optuna trial, under the distribution's name."""
    values: dict[str, Any] = {}
    for name, (kind, low, high) in distributions.items():
        if kind == "choice":
            values[name] = trial.suggest_categorical(name, list(low))
        elif kind == "int":
            values[name] = trial.suggest_int(name, low, high)
        else:
            values[name] = trial.suggest_float(name, low, high, log=kind == "logfloat")
    return values


def to_constructor_arguments(raw: dict[str, Any]) -> dict[str, Any]:
    """Raw sampled values -> constructor arguments (``per_*`` go to the prioritized buffer)."""
    kwargs = {
        key: value for key, value in raw.items() if not key.startswith("per_") and key != "one_minus_gamma"
    }
    if "one_minus_gamma" in raw:
        kwargs["gamma"] = 1 - raw["one_minus_gamma"]
    per = {key.removeprefix("per_"): value for key, value in raw.items() if key.startswith("per_")}
    if per:
        kwargs["replay_buffer_kwargs"] = per
    return kwargs


def make_sampler(name: str) -> Callable[..., dict[str, Any]]:
    base, own = SEARCH_SPACES[name]

    def sample(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        hyperparams = HYPERPARAMS_SAMPLER[base](trial, n_actions, n_envs, additional_args) if base else {}
        return {**hyperparams, **to_constructor_arguments(suggest(trial, own))}

    sample.__doc__ = f"Optuna sampler for {ALGORITHMS[name].__name__}: {base or 'its own'} search space and {', '.join(own)}."
    return sample


def make_converter(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    base, own = SEARCH_SPACES[name]

    def convert(params: dict[str, Any]) -> dict[str, Any]:
        base_params = {key: value for key, value in params.items() if key not in own}
        hyperparams = HYPERPARAMS_CONVERTER[base](base_params) if base else {}
        return {**hyperparams, **to_constructor_arguments({key: params[key] for key in own if key in params})}

    return convert


def register() -> None:
    """Add every ``sb3_ext`` algorithm, sampler and converter to rl-zoo3's tables (idempotent)."""
    rl_zoo3.ALGOS.update(ALGORITHMS)
    for name in ALGORITHMS:
        HYPERPARAMS_SAMPLER[name] = make_sampler(name)
        HYPERPARAMS_CONVERTER[name] = make_converter(name)


register()


# ---------------------------------------------------------------------------- entry point
def env_settings(config: str | Path, env_id: str) -> dict[str, Any] | None:
    """The settings for ``env_id`` in a YAML hyperparameter file, or None (no such file or env)."""
    import yaml

    path = Path(config)
    if path.suffix not in (".yml", ".yaml") or not path.is_file():
        return None
    return (yaml.safe_load(path.read_text()) or {}).get(env_id)


def with_defaults(command: str, args: list[str]) -> list[str]:
    """rl-zoo3 arguments with this package's defaults added where the user gave none."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--algo", default="ppo")
    peek.add_argument("--env", default="CartPole-v1")
    peek.add_argument("-conf", "--conf-file", default=None)
    peek.add_argument("--num-threads", default=None)
    peek.add_argument("--gym-packages", nargs="+", default=None)
    peek.add_argument("--env-kwargs", nargs="+", default=None)
    peek.add_argument("--eval-env-kwargs", nargs="+", default=None)
    known, _ = peek.parse_known_args(args)
    args = list(args)
    config = known.conf_file
    if (
        command == "train"
        and config is None
        and env_settings(HYPERPARAMS_DIR / f"{known.algo}.yml", known.env)
    ):
        config = str(HYPERPARAMS_DIR / f"{known.algo}.yml")
        args += ["-conf", config]
    settings = env_settings(config, known.env) if command == "train" and config else None
    if settings and settings.get("env_kwargs") and known.env_kwargs is None and known.eval_env_kwargs is None:
        args += ["--eval-env-kwargs", *(f"{key}:{value!r}" for key, value in settings["env_kwargs"].items())]
    if command == "train" and known.num_threads is None:
        args += ["--num-threads", "1"]
    if known.gym_packages is None:
        args += ["--gym-packages", "sb3_ext.zoo"]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(
            f"usage: python -m sb3_ext.zoo {{{','.join(COMMANDS)}}} [rl-zoo3 arguments]\n{__doc__}",
            file=sys.stderr,
        )
        return 2
    command, args = argv[0], with_defaults(argv[0], argv[1:])
    if command == "train":
        from rl_zoo3.train import train as run
    else:
        from rl_zoo3.enjoy import enjoy as run
    saved_argv = sys.argv
    sys.argv = [f"rl_zoo3.{command}", *args]
    try:
        run()
    finally:
        sys.argv = saved_argv
    return 0


if __name__ == "__main__":
    sys.exit(main())
