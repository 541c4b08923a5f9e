"""Dyna: tabular Dyna-Q / Dyna-Q+ maths and behaviour, and deep Dyna's use of its learned model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.dyna import TabularDynaQ

#: Sutton & Barto's Dyna maze (Example 8.1); the shortest path from S to G takes 14 steps.
DYNA_MAZE = """\
.......#G
..#....#.
S.#....#.
..#......
.....#...
........."""

#: Sutton & Barto's shortcut maze (Example 8.3): the wall opens on the right half-way through.
SHORTCUT_MAZE = """\
........G
.........
.........
.########
.........
...S....."""


def greedy_steps(model, env: gym.Env, max_steps: int = 60) -> int | None:
    obs, _ = env.reset()
    for step in range(1, max_steps + 1):
        obs, _, terminated, _, _ = env.step(model.predict(obs, deterministic=True)[0])
        if terminated:
            return step
    return None


def tabular_agent(tmp_path, **kwargs) -> TabularDynaQ:
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), **kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    return model


# ---------------------------------------------------------------------------- TabularDynaQ
def test_tabular_rejects_non_discrete_observations():
    with pytest.raises(ValueError, match="Discrete observation space.*obs_mode='index'"):
        TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0"))  # coords: a Box


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"planning_steps": -1}, "planning_steps"),
        ({"planning_steps": 2.5}, "planning_steps"),
        ({"kappa": -0.1}, "kappa"),
        ({"gamma": 1.5}, "gamma"),
        ({"exploration_final_eps": 2.0}, "exploration_final_eps"),
    ],
)
def test_tabular_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="index"), **kwargs)


@pytest.mark.parametrize("planning_steps, expected", [(0, 1.0), (5, 1.5)])
def test_tabular_direct_and_planning_updates_are_exact(tmp_path, planning_steps, expected):
    # One real transition (s=0, a=1, r=2, s'=1). Direct update: 0 + 0.5 * (2 + 0.9 * 0 - 0) = 1.
    # Planning can only replay that pair from the model; the synchronous sweep gives
    # 1 + 0.5 * (2 - 1) = 1.5 whatever the number of draws.
    model = tabular_agent(tmp_path, learning_rate=0.5, gamma=0.9, planning_steps=planning_steps)
    model.train(np.array([0]), np.array([1]), np.array([2.0]), np.array([1]), np.array([False]))
    q = np.zeros((9, 4))
    q[0, 1] = expected
    np.testing.assert_allclose(model.q_table, q)
    assert model.model.next_state[0, 1] == 1 and model.model.reward[0, 1] == 2.0 and model.model.n_tried == 1


def test_tabular_dyna_q_plus_bonus_is_exact(tmp_path):
    # Dyna-Q+: at time 100, pair (0, 1) was just tried; the never-tried actions of state 0 are
    # modelled as self-loops with reward 0, last tried at time 0, so their planning target is
    # kappa * sqrt(100) + gamma * max Q[0] = 1 + 0.9 * 1 (Q[0, 1] = 1 after the direct update).
    model = tabular_agent(tmp_path, learning_rate=0.5, gamma=0.9, planning_steps=200, kappa=0.1, seed=0)
    model.num_timesteps = 100
    model.train(np.array([0]), np.array([1]), np.array([2.0]), np.array([1]), np.array([False]))
    np.testing.assert_allclose(model.q_table[0], [0.95, 1.5, 0.95, 0.95])
    np.testing.assert_allclose(model.q_table[1:], 0.0)


def test_tabular_planning_learns_the_maze_far_faster():
    """3000 steps: Dyna-Q (n=50) has the shortest path, Q-learning (n=0) not yet."""
    lengths = {}
    for n in (0, 50):
        env = gym.make("AdvRL/GridWorld-v0", layout=DYNA_MAZE, obs_mode="index", max_episode_steps=100_000)
        model = TabularDynaQ("TabularPolicy", env, planning_steps=n, seed=0).learn(3000)
        lengths[n] = greedy_steps(model, gym.make("AdvRL/GridWorld-v0", layout=DYNA_MAZE, obs_mode="index"))
        assert model.model.n_tried > 0 and model._n_planning_updates == (3000 * n)
    assert lengths[50] == 14
    assert lengths[0] is None or lengths[0] > 14


class OpenShortcut(BaseCallback):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            self.training_env.envs[0].unwrapped.walls[3, 8] = False
        return True


def test_dyna_q_plus_finds_the_shortcut_dyna_q_misses():
    """Sutton & Barto Example 8.3: after the wall opens, only the exploration bonus finds the
    10-step shortcut; Dyna-Q keeps the old 16-step detour."""
    maze = {"layout": SHORTCUT_MAZE, "obs_mode": "index", "step_reward": 0.0, "goal_reward": 1.0}
    opened = gym.make("AdvRL/GridWorld-v0", **maze)
    opened.unwrapped.walls[3, 8] = False
    lengths = {}
    for kappa in (0.0, 1e-3):
        env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=100_000, **maze)
        model = TabularDynaQ("TabularPolicy", env, planning_steps=50, kappa=kappa, learning_rate=1.0, seed=0)
        model.learn(6000, callback=OpenShortcut(3000))
        lengths[kappa] = greedy_steps(model, opened)
    assert lengths == {0.0: 16, 1e-3: 10}


def test_tabular_vec_env_and_save_load(tmp_path):
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs={"obs_mode": "index"})
    model = TabularDynaQ("TabularPolicy", env, planning_steps=10, seed=0).learn(2000)
    assert model.num_timesteps == 2000
    assert greedy_steps(model, gym.make("AdvRL/GridWorld-v0", obs_mode="index")) == 8
    model.save(tmp_path / "dynaq")
    loaded = TabularDynaQ.load(tmp_path / "dynaq", env=env)
    states = np.arange(25)
    np.testing.assert_array_equal(
        loaded.predict(states, deterministic=True)[0], model.predict(states, deterministic=True)[0]
    )
    np.testing.assert_array_equal(loaded.q_table, model.q_table)
    np.testing.assert_array_equal(loaded.model.next_state, model.model.next_state)
    assert loaded.planning_steps == 10 and loaded.model.n_tried == model.model.n_tried
    before = loaded.q_table.copy()
    loaded.learn(200, reset_num_timesteps=False)  # the loaded table and model keep learning
    assert loaded.num_timesteps == 2200 and not np.array_equal(before, loaded.q_table)
