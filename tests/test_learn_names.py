"""NamedLearnMixin: one ``learn`` for the algorithms that run an SB3 training loop, logged under their name."""

from __future__ import annotations

import inspect

import gymnasium as gym
import pytest

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import AuxDQN, Dyna, PERAuxDQN, WorldModelMPC
from sb3_ext.common.learn import NamedLearnMixin

CASES = [
    (AuxDQN, "AdvRL/GridWorld-v0", "AuxDQN"),
    (PERAuxDQN, "AdvRL/GridWorld-v0", "AuxDQN"),  # inherits AuxDQN's name, as before
    (Dyna, "AdvRL/GridWorld-v0", "Dyna"),
    (WorldModelMPC, "AdvRL/Pendulum-v0", "WorldModelMPC"),
]


@pytest.mark.parametrize(("cls", "env_id", "name"), CASES, ids=[case[0].__name__ for case in CASES])
def test_runs_are_logged_under_the_algorithm_name_unless_told_otherwise(cls, env_id, name, tmp_path) -> None:
    assert issubclass(cls, NamedLearnMixin) and cls.log_name == name
    assert "learn" not in vars(cls)  # the mixin's learn, not a re-declared one
    parameters = inspect.signature(cls.learn).parameters
    assert parameters["log_interval"].default == 4 and parameters["tb_log_name"].default is None
    model = cls("MlpPolicy", gym.make(env_id), learning_starts=1_000, tensorboard_log=str(tmp_path), seed=0)
    assert model.learn(8) is model
    model.learn(8, tb_log_name="custom", reset_num_timesteps=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([f"{name}_1", "custom_1"])


class RecordingBase:
    """Stands in for an SB3 algorithm: its ``learn`` returns what it was given."""

    def learn(self, **kwargs):
        return kwargs


class Named(NamedLearnMixin, RecordingBase):
    log_name = "Named"


def test_learn_hands_sb3_defaults_and_the_log_name_to_the_base_learn() -> None:
    assert Named().learn(100) == {
        "total_timesteps": 100,
        "callback": None,
        "log_interval": 4,
        "tb_log_name": "Named",
        "reset_num_timesteps": True,
        "progress_bar": False,
    }

    def callback(locals_, globals_):
        return True

    given = Named().learn(7, callback, 2, "run", False, True)
    assert given == {
        "total_timesteps": 7,
        "callback": callback,
        "log_interval": 2,
        "tb_log_name": "run",
        "reset_num_timesteps": False,
        "progress_bar": True,
    }
