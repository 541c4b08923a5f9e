"""Tests of gym_advrl.wrappers with Stable-Baselines3: VecEnvs, the logging callback, docs and examples."""

from __future__ import annotations

import doctest
import runpy
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import gym_advrl.wrappers as wrappers_pkg
from gym_advrl.wrappers import (
    Curriculum,
    DomainRandomization,
    GoalSchedule,
    action_repeat,
    curriculum,
    observation,
    randomization,
)

ROOT = Path(__file__).resolve().parents[1]
PENDULUM_RANGES = {"m": (0.5, 2.0), "l": (0.5, 1.5)}
torch.set_num_threads(1)  # the suite runs on two shared cores


# ---------------------------------------------------------------------------------- VecEnvs, callback, docs
def test_vec_envs_and_subprocess() -> None:
    kwargs = {"ranges": PENDULUM_RANGES}
    dummy = make_vec_env(
        "AdvRL/Pendulum-v0", n_envs=2, seed=0, wrapper_class=DomainRandomization, wrapper_kwargs=kwargs
    )
    subproc = make_vec_env(
        "AdvRL/Pendulum-v0",
        n_envs=2,
        seed=0,
        wrapper_class=DomainRandomization,
        wrapper_kwargs=kwargs,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "fork"},
    )
    try:
        np.testing.assert_array_equal(dummy.reset(), subproc.reset())
        physics = [info["physics"] for info in dummy.reset_infos]
        assert physics == [info["physics"] for info in subproc.reset_infos] and physics[0] != physics[1]
        actions = np.zeros((2, 1), dtype=np.float32)
        for _ in range(3):
            out_d, out_s = dummy.step(actions), subproc.step(actions)
            np.testing.assert_array_equal(out_d[0], out_s[0])
        assert [i["physics"] for i in out_s[3]] == physics
        goals = make_vec_env(
            "AdvRL/GridWorld-v0",
            n_envs=2,
            wrapper_class=GoalSchedule,
            wrapper_kwargs={"goals": [(4, 4), (0, 4)]},
        )
        goals.env_method("set_goal", 1, indices=[1])
        goals.reset()
        assert [info["goal"] for info in goals.reset_infos] == [(4, 4), (0, 4)]
    finally:
        subproc.close()


def test_callback_logs_curriculum_physics_and_goal() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from stable_baselines3.common.logger import KVWriter, Logger

    from sb3_ext import WrapperInfoCallback

    class Capture(KVWriter):
        def __init__(self) -> None:
            self.rows: list[dict] = []

        def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
            self.rows.append(dict(key_values))

    def make() -> gym.Env:
        env = DomainRandomization(gym.make("AdvRL/Pendulum-v0", max_episode_steps=16), PENDULUM_RANGES)
        return Curriculum(env, [{"x_init": 0.5}, {}], success_threshold=-1e9, window=2)

    class EpisodeEnds(BaseCallback):
        """The final infos of the episodes, as the env stack reports them, per rollout."""

        def __init__(self) -> None:
            super().__init__()
            self.infos: list[list[dict]] = []

        def _on_rollout_start(self) -> None:
            self.infos.append([])

        def _on_step(self) -> bool:
            self.infos[-1] += [
                info for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True) if done
            ]
            return True

    model = PPO(
        "MlpPolicy", make_vec_env(make, n_envs=2, seed=0), n_steps=32, batch_size=32, n_epochs=1, seed=0
    )
    capture, ends = Capture(), EpisodeEnds()
    model.set_logger(Logger(None, [capture]))
    model.learn(128, callback=CallbackList([WrapperInfoCallback(), ends]))
    # One dump per rollout of 2 envs x 32 steps, i.e. after 4 episodes of 16 steps each.
    assert len(capture.rows) == 2 and [len(infos) for infos in ends.infos] == [4, 4]
    for logged, infos in zip(capture.rows, ends.infos, strict=True):
        expected = {
            "curriculum/level": np.mean([info["curriculum_level"] for info in infos]),
            "curriculum/success": np.mean([info["curriculum_success"] for info in infos]),
            "curriculum/success_rate": np.mean([info["curriculum_success_rate"] for info in infos]),
            "physics/m": np.mean([info["randomized_physics"]["m"] for info in infos]),
            "physics/l": np.mean([info["randomized_physics"]["l"] for info in infos]),
        }
        for key, value in expected.items():
            assert logged[key] == pytest.approx(value, rel=1e-12), key
    # Every episode succeeds (threshold -1e9): after a window of 2 each env moves to level 1. The
    # masses are sampled per episode.
    assert [capture.rows[0]["curriculum/level"], capture.rows[1]["curriculum/level"]] == [0.0, 1.0]
    assert len({info["randomized_physics"]["m"] for infos in ends.infos for info in infos}) == 8


def test_callback_values_match_wrapper_state() -> None:
    from stable_baselines3.common.logger import Logger

    from sb3_ext import WrapperInfoCallback

    callback = WrapperInfoCallback()
    logger = Logger(None, [])
    callback.model = type("M", (), {"logger": logger})()
    callback.locals = {
        "infos": [
            {
                "curriculum_level": 2,
                "curriculum_success": True,
                "curriculum_success_rate": 0.9,
                "randomized_physics": {"m": 1.5},
            },
            {"curriculum_level": 0, "randomized_physics": {"m": 0.5}},
            {"curriculum_level": 7},
            {"goal": (0, 4), "goal_index": 1},
            {"goal": (4, 4), "goal_index": 0},
        ],
        "dones": np.array([True, True, False, True, True]),
    }
    assert callback._on_step()
    assert logger.name_to_value["curriculum/level"] == 1.0 and logger.name_to_value["physics/m"] == 1.0
    assert (
        logger.name_to_value["curriculum/success_rate"] == 0.9 and logger.name_to_value["goal/index"] == 0.5
    )
    assert "physics/g" not in logger.name_to_value


@pytest.mark.parametrize(
    "module", [randomization, curriculum, observation, action_repeat], ids=lambda m: m.__name__
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_wrappers_import_neither_torch_nor_sb3() -> None:
    code = "import sys, gym_advrl.wrappers; assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert set(wrappers_pkg.__all__) == {
        "ActionRepeat",
        "Curriculum",
        "DomainRandomization",
        "GoalSchedule",
        "MaskObservation",
        "ObservationNoise",
        "RandomShift",
    }


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("transfer_gridworld.py", ["--timesteps", "300"], "from scratch"),
        ("domain_randomization.py", ["--timesteps", "150", "--eval-episodes", "1"], "randomized m in"),
    ],
)
def test_examples_run_with_small_budget(
    script: str,
    args: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    # In-process (torch is already imported), as `python examples/<script> <args>` would run it.
    monkeypatch.setattr(sys, "argv", [script, *args])
    runpy.run_path(str(ROOT / "examples" / script), run_name="__main__")
    assert expected in capsys.readouterr().out
