"""rl-zoo3 as the experiment runner: every ``sb3_ext`` algorithm trains through it with a tiny budget,
a trained agent loads back in rl-zoo3's ``enjoy``, and Optuna tuning runs with our samplers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

pytest.importorskip("rl_zoo3")

from sb3_ext import zoo  # noqa: E402

TINY_OFF_POLICY = ["learning_starts:50", "buffer_size:1000", "batch_size:32"]
TINY_DQN = [*TINY_OFF_POLICY, "train_freq:4", "gradient_steps:1", "target_update_interval:50"]

#: rl-zoo3 name -> (env, extra -params for a run of a few seconds)
CASES: dict[str, tuple[str, list[str]]] = {
    "perdqn": ("CartPole-v1", TINY_DQN),
    "perqrdqn": ("CartPole-v1", [*TINY_DQN, "policy_kwargs:dict(net_arch=[32], n_quantiles=8)"]),
    "persac": ("AdvRL/Pendulum-v0", TINY_OFF_POLICY),
    "pertd3": ("AdvRL/Pendulum-v0", [*TINY_OFF_POLICY, "policy_kwargs:dict(net_arch=[32, 32])"]),
    "auxdqn": ("AdvRL/GridWorld-v0", TINY_DQN),
    "perauxdqn": ("CartPole-v1", TINY_DQN),
    "dyna": (
        "AdvRL/GridWorld-v0",
        [*TINY_DQN, "model_train_freq:100", "model_gradient_steps:5", "planning_steps:2"],
    ),
    "tabulardynaq": ("AdvRL/GridWorld-v0", []),
    "mbpo": (
        "AdvRL/Pendulum-v0",
        [
            *TINY_OFF_POLICY,
            "utd_ratio:1",
            "rollout_batch_size:100",
            "model_gradient_steps:5",
            "model_kwargs:dict(n_members=2, n_elites=1, hidden_sizes=(32,))",
            "policy_kwargs:dict(net_arch=[32, 32])",
        ],
    ),
    "optioncritic": ("AdvRL/FourRooms-v0", ["n_envs:2"]),
    "feudalagent": ("AdvRL/FourRooms-v0", ["n_envs:2", "c:2", "n_steps:5"]),
    "hac": ("AdvRL/GoalGridWorld-v0", [*TINY_OFF_POLICY, "policy_kwargs:dict(net_arch=[32])"]),
    "latentmpc": (
        "AdvRL/Pendulum-v0",
        [
            "learning_starts:100",
            "batch_size:4",
            "sequence_length:8",
            "train_ratio:4",
            "horizon:3",
            "population_size:16",
            "n_elites:4",
            "n_iterations:2",
            "buffer_size:1000",
            "policy_kwargs:dict(world_model_kwargs=dict(deter_size=16, stoch_size=4, hidden_size=16,"
            " mlp_layers=[16], embed_dim=16))",
        ],
    ),
    "dreamer": (
        "AdvRL/Pendulum-v0",
        [
            "learning_starts:100",
            "batch_size:4",
            "sequence_length:8",
            "train_ratio:4",
            "imagination_horizon:3",
            "buffer_size:1000",
            "policy_kwargs:dict(net_arch=[16], world_model_kwargs=dict(deter_size=16, stoch_size=4, classes=4,"
            " hidden_size=16, mlp_layers=[16], embed_dim=16))",
        ],
    ),
    "worldmodelmpc": (
        "AdvRL/Pendulum-v0",
        [
            "learning_starts:100",
            "train_freq:100",
            "n_model_epochs:2",
            "horizon:5",
            "population_size:20",
            "n_elites:4",
            "n_iterations:2",
            "n_particles:2",
            "policy_kwargs:dict(net_arch=[32, 32], n_members=2)",
        ],
    ),
}


def zoo_train(
    tmp_path: Path, algo: str, env_id: str, params: list[str], steps: int = 300, extra: tuple[str, ...] = ()
) -> Path:
    args = [
        "train",
        "--algo",
        algo,
        "--env",
        env_id,
        "-n",
        str(steps),
        "-f",
        str(tmp_path),
        "--seed",
        "0",
        "--eval-freq",
        "-1",
        "--log-interval",
        "-1",
        *extra,
    ]
    if params:
        args += ["-params", *params]
    assert zoo.main(args) == 0
    return tmp_path / algo


def test_every_sb3_ext_algorithm_has_a_case_a_sampler_and_a_hyperparameter_file() -> None:
    import rl_zoo3
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from stable_baselines3.common.base_class import BaseAlgorithm

    import sb3_ext

    exported = {
        name.lower()
        for name in sb3_ext.__all__
        if isinstance(getattr(sb3_ext, name), type) and issubclass(getattr(sb3_ext, name), BaseAlgorithm)
    }
    assert exported == set(zoo.ALGORITHMS) == set(CASES)
    for name, cls in zoo.ALGORITHMS.items():
        assert rl_zoo3.ALGOS[name] is cls
        assert name in HYPERPARAMS_SAMPLER and name in HYPERPARAMS_CONVERTER
        settings = yaml.safe_load((zoo.HYPERPARAMS_DIR / f"{name}.yml").read_text())
        assert settings, name
        for env_id, env_settings in settings.items():
            assert env_id in gym.registry, (name, env_id)
            assert {"n_timesteps", "policy"} <= set(env_settings)


@pytest.mark.parametrize("algo", sorted(CASES))
def test_rl_zoo3_trains_every_algorithm(algo: str, tmp_path: Path) -> None:
    env_id, params = CASES[algo]
    log_dir = zoo_train(tmp_path, algo, env_id, params)
    name = env_id.replace("/", "-")
    saved = list(log_dir.glob(f"{name}_*/{name}.zip"))
    assert len(saved) == 1
    model = zoo.ALGORITHMS[algo].load(saved[0], device="cpu")
    assert model.num_timesteps >= 300
    config = yaml.unsafe_load((saved[0].parent / name / "config.yml").read_text())
    assert dict(config)  # rl-zoo3 recorded the hyperparameters it used


def test_shipped_hyperparameters_are_the_default_config(tmp_path: Path) -> None:
    log_dir = zoo_train(
        tmp_path,
        "dyna",
        "AdvRL/GridWorld-v0",
        ["learning_starts:50", "model_train_freq:100", "model_gradient_steps:2", "planning_steps:1"],
    )
    config = dict(
        yaml.unsafe_load(
            (next(log_dir.glob("AdvRL-GridWorld-v0_*")) / "AdvRL-GridWorld-v0" / "config.yml").read_text()
        )
    )
    shipped = yaml.safe_load((zoo.HYPERPARAMS_DIR / "dyna.yml").read_text())["AdvRL/GridWorld-v0"]
    assert config["real_ratio"] == shipped["real_ratio"] and config["env_kwargs"] == {"size": 8}
    assert config["learning_starts"] == 50  # -params still override the file


def test_optuna_tuning_uses_our_sampler(tmp_path: Path) -> None:
    zoo_train(
        tmp_path,
        "tabulardynaq",
        "AdvRL/GridWorld-v0",
        [],
        steps=200,
        extra=(
            "-optimize",
            "--n-trials",
            "2",
            "--n-jobs",
            "1",
            "--n-startup-trials",
            "2",
            "--n-evaluations",
            "1",
            "--eval-episodes",
            "1",
            "--no-optim-plots",
            "--sampler",
            "random",
            "--pruner",
            "none",
        ),
    )
    reports = list((tmp_path / "tabulardynaq").rglob("report_*.csv"))
    assert len(reports) == 1
    header = reports[0].read_text().splitlines()[0]
    for parameter in ("params_learning_rate", "params_planning_steps", "params_one_minus_gamma"):
        assert parameter in header


def test_converter_inverts_the_sampler() -> None:
    optuna = pytest.importorskip("optuna")
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    trial = optuna.trial.FixedTrial(
        {
            "one_minus_gamma": 0.01,
            "batch_size_pow": 5,
            "learning_rate": 1e-3,
            "train_freq": 4,
            "subsample_steps": 2,
            "exploration_fraction": 0.1,
            "exploration_final_eps": 0.05,
            "target_update_interval": 100,
            "net_arch": "small",
            "per_alpha": 0.7,
            "per_beta": 0.5,
        }
    )
    sampled = HYPERPARAMS_SAMPLER["perdqn"](trial, 2, 1, {"using_her_replay_buffer": False})
    assert sampled["replay_buffer_kwargs"] == {"alpha": 0.7, "beta": 0.5}
    assert sampled["gamma"] == pytest.approx(0.99) and sampled["batch_size"] == 32
    assert HYPERPARAMS_CONVERTER["perdqn"](trial.params) == sampled


def test_the_command_line_trains_and_enjoy_loads_it_back(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "sb3_ext.zoo"]
    train = subprocess.run(
        [
            *run,
            "train",
            "--algo",
            "perdqn",
            "--env",
            "AdvRL/GridWorld-v0",
            "-n",
            "300",
            "-f",
            "logs",
            "--eval-freq",
            "-1",
            "-params",
            *TINY_DQN,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    assert "sb3_ext/hyperparams/perdqn.yml" in train.stdout  # the shipped settings were the default
    enjoy = subprocess.run(
        [
            *run,
            "enjoy",
            "--algo",
            "perdqn",
            "--env",
            "AdvRL/GridWorld-v0",
            "-f",
            "logs",
            "-n",
            "150",
            "--no-render",
            "--deterministic",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert enjoy.returncode == 0, enjoy.stderr[-2000:]
    assert "Loading" in enjoy.stdout and "perdqn/AdvRL-GridWorld-v0_1/AdvRL-GridWorld-v0.zip" in enjoy.stdout


def test_rl_zoo3_trains_ppo_on_gridworld_with_the_shipped_file(tmp_path: Path) -> None:
    """The plain rl-zoo3 command, for SB3's own algorithms on our envs, with our hyperparameter file."""
    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        "ppo",
        "--env",
        "AdvRL/GridWorld-v0",
        "--gym-packages",
        "gym_advrl",
        "-conf",
        str(zoo.HYPERPARAMS_DIR / "ppo.yml"),
        "-n",
        "512",
        "-f",
        str(tmp_path),
        "--seed",
        "0",
        "--eval-freq",
        "-1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = list((tmp_path / "ppo").glob("AdvRL-GridWorld-v0_*/AdvRL-GridWorld-v0.zip"))
    assert len(saved) == 1, result.stdout[-2000:]
    assert "n_steps" in (saved[0].parent / "AdvRL-GridWorld-v0" / "config.yml").read_text()


def test_usage_without_a_command() -> None:
    assert zoo.main([]) == 2
    assert zoo.main(["plot"]) == 2


def test_the_config_files_env_kwargs_reach_the_evaluation_env() -> None:
    args = zoo.with_defaults("train", ["--algo", "tabulardynaq", "--env", "AdvRL/GridWorld-v0"])
    assert args[args.index("-conf") + 1] == str(zoo.HYPERPARAMS_DIR / "tabulardynaq.yml")
    assert args[args.index("--eval-env-kwargs") + 1] == "obs_mode:'index'"
    assert args[args.index("--num-threads") + 1] == "1"
    # What the user gives is kept: their own kwargs, thread count and config.
    given = zoo.with_defaults(
        "train",
        [
            "--algo",
            "tabulardynaq",
            "--env",
            "AdvRL/GridWorld-v0",
            "--env-kwargs",
            "size:4",
            "--num-threads",
            "2",
        ],
    )
    assert "--eval-env-kwargs" not in given and given.count("--num-threads") == 1
    assert "-conf" not in zoo.with_defaults("train", ["--algo", "ppo", "--env", "CartPole-v1"])
