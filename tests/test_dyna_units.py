"""Dyna, unit by unit: exact values of the tabular model, of TabularDynaQ's learning loop, logs
and arguments, of the Q-table policy and of the model buffer of ``sb3_ext.dyna``."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger, configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.dyna import ModelReplayBuffer, TabularDynaQ, TabularModel, TabularQPolicy, TabularTransitions
from sb3_ext.dyna.policies import check_tabular_spaces

#: The moves of GridWorld's actions 0 up, 1 right, 2 down, 3 left, as (row, col) steps.
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def exact(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern that accepts exactly ``message``."""
    return f"^{re.escape(message)}$"


def grid_moves(size: int) -> np.ndarray:
    """``next[state, action]`` of an open ``size`` x ``size`` GridWorld (moves into an edge stay)."""
    table = np.zeros((size * size, 4), dtype=np.int64)
    for row in range(size):
        for col in range(size):
            for action, (dr, dc) in enumerate(MOVES):
                r, c = min(max(row + dr, 0), size - 1), min(max(col + dc, 0), size - 1)
                table[row * size + col, action] = r * size + c
    return table


def csv_agent(tmp_path, env, **kwargs) -> TabularDynaQ:
    model = TabularDynaQ("TabularPolicy", env, **kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    return model


def csv_rows(tmp_path) -> list[dict[str, str]]:
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


# ---------------------------------------------------------------------------- the table model
def test_tabular_model_starts_with_self_loops_and_nothing_tried():
    model = TabularModel(3, 2)
    np.testing.assert_array_equal(model.next_state, [[0, 0], [1, 1], [2, 2]])
    assert model.next_state.dtype == np.int64
    np.testing.assert_array_equal(model.reward, np.zeros((3, 2)))
    assert model.reward.dtype == np.float64
    np.testing.assert_array_equal(model.terminal, np.zeros((3, 2), dtype=bool))
    np.testing.assert_array_equal(model.tried, np.zeros((3, 2), dtype=bool))
    np.testing.assert_array_equal(model.last_tried, np.zeros((3, 2), dtype=np.int64))
    assert model.terminal.dtype == model.tried.dtype == model.visited.dtype == bool
    assert model.last_tried.dtype == model._tried_pairs.dtype == model._visited_states.dtype == np.int64
    np.testing.assert_array_equal(model.visited, np.zeros(3, dtype=bool))
    assert (model.n_states, model.n_actions, model.n_tried, model.n_visited) == (3, 2, 0, 0)


def test_tabular_model_update_records_the_last_outcome_and_each_pair_once():
    """Three batches over 4 states x 3 actions, with a pair repeated inside a batch and across
    batches: the model keeps the last outcome of every pair, the real step it was last tried,
    and lists each tried pair (flat index s * 3 + a) and each visited state exactly once, in the
    order they were first seen."""
    model = TabularModel(4, 3)
    batches = [
        (TabularTransitions(np.array([1, 1]), np.array([2, 2]), np.array([0.5, 0.7]), np.array([3, 2]), np.array([False, True])), 5),
        (TabularTransitions(np.array([0, 3]), np.array([1, 0]), np.array([-1.0, 2.0]), np.array([1, 0]), np.array([False, False])), 6),
        (TabularTransitions(np.array([1, 0]), np.array([2, 0]), np.array([4.0, 0.25]), np.array([0, 0]), np.array([False, True])), 9),
    ]  # fmt: skip
    for batch, step in batches:
        model.update(batch, step)
    # The pair (1, 2): twice in the first batch (the later entry wins), then again at step 9.
    assert (model.next_state[1, 2], model.reward[1, 2], model.terminal[1, 2]) == (0, 4.0, False)
    assert model.last_tried[1, 2] == 9
    assert (model.next_state[0, 1], model.reward[0, 1], model.terminal[0, 1], model.last_tried[0, 1]) == (
        1,
        -1.0,
        False,
        6,
    )
    assert (model.next_state[3, 0], model.reward[3, 0], model.last_tried[3, 0]) == (0, 2.0, 6)
    assert (model.next_state[0, 0], model.reward[0, 0], model.terminal[0, 0], model.last_tried[0, 0]) == (
        0,
        0.25,
        True,
        9,
    )
    # Untouched pairs keep the self-loop with reward 0, never tried.
    assert (model.next_state[2, 1], model.reward[2, 1], model.terminal[2, 1], model.last_tried[2, 1]) == (
        2,
        0.0,
        False,
        0,
    )
    tried = np.zeros((4, 3), dtype=bool)
    tried[[1, 0, 3, 0], [2, 1, 0, 0]] = True
    np.testing.assert_array_equal(model.tried, tried)
    assert model.n_tried == 4
    np.testing.assert_array_equal(model._tried_pairs[:4], [1 * 3 + 2, 0 * 3 + 1, 3 * 3 + 0, 0 * 3 + 0])
    assert model.n_visited == 3
    np.testing.assert_array_equal(model._visited_states[:3], [1, 0, 3])
    np.testing.assert_array_equal(model.visited, [True, True, False, True])  # fmt: skip


def test_tabular_model_holds_every_pair_and_state():
    """Every pair of a 3 x 2 model tried (some twice): each listed once, every state visited."""
    model = TabularModel(3, 2)
    for step, (states, actions) in enumerate(
        (([2, 0, 2], [1, 0, 1]), ([1, 1, 0, 2], [0, 1, 1, 0]), ([0, 1], [0, 1]))
    ):
        n = len(states)
        model.update(
            TabularTransitions(
                np.array(states), np.array(actions), np.ones(n), np.zeros(n, np.int64), np.zeros(n, bool)
            ),
            step,
        )
    assert model.n_tried == 6 and model.n_visited == 3 and model.tried.all() and model.visited.all()
    # In order of first try; pairs new in the same batch in increasing order.
    np.testing.assert_array_equal(model._tried_pairs, [0, 5, 1, 2, 3, 4])
    np.testing.assert_array_equal(model._visited_states, [0, 2, 1])
    np.testing.assert_array_equal(model.last_tried, [[2, 1], [1, 2], [1, 0]])


def test_tabular_model_samples_tried_pairs_or_any_action_of_visited_states_uniformly():
    model = TabularModel(5, 3)
    model.update(TabularTransitions(np.array([4, 2, 4]), np.array([1, 0, 2]), np.zeros(3), np.array([0, 1, 2]), np.zeros(3, bool)), 1)  # fmt: skip
    rng = np.random.default_rng(0)
    states, actions = model.sample(30_000, rng)
    assert states.shape == actions.shape == (30_000,)
    pairs, counts = np.unique(np.stack([states, actions], axis=1), axis=0, return_counts=True)
    np.testing.assert_array_equal(pairs, [[2, 0], [4, 1], [4, 2]])
    np.testing.assert_allclose(counts / 30_000, 1 / 3, atol=0.015)
    # Dyna-Q+: a visited state (2 or 4, each with probability 1/2), then any of the 3 actions.
    states, actions = model.sample(30_000, rng, include_untried=True)
    visited, counts = np.unique(states, return_counts=True)
    np.testing.assert_array_equal(visited, [2, 4])
    np.testing.assert_allclose(counts / 30_000, 0.5, atol=0.015)
    tried_actions, counts = np.unique(actions[states == 2], return_counts=True)
    np.testing.assert_array_equal(tried_actions, [0, 1, 2])
    np.testing.assert_allclose(counts / counts.sum(), 1 / 3, atol=0.02)
    # The default is the tried pairs only.
    states, actions = model.sample(300, rng, False)
    assert set(zip(states.tolist(), actions.tolist(), strict=True)) <= {(2, 0), (4, 1), (4, 2)}


# ---------------------------------------------------------------------------- TabularDynaQ
def test_tabular_dyna_q_defaults():
    """Sutton & Barto's settings: alpha 0.1, gamma 0.95, n = 10 planning steps, epsilon 0.1."""
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"))
    assert (model.learning_rate, model.lr_schedule(1.0), model.lr_schedule(0.0)) == (0.1, 0.1, 0.1)
    assert (model.gamma, model.planning_steps, model.kappa) == (0.95, 10, 0.0)
    assert (model.exploration_fraction, model.exploration_initial_eps, model.exploration_final_eps) == (
        0.1,
        0.1,
        0.1,
    )
    assert model.exploration_rate == 0.1
    assert model._stats_window_size == 100
    assert (model.tensorboard_log, model.verbose, model.seed, model.device) == (
        None,
        0,
        None,
        th.device("cpu"),
    )
    assert model.policy.initial_value == 0.0 and model.policy_kwargs == {}
    np.testing.assert_array_equal(model.q_table, np.zeros((9, 4)))
    assert model.q_table.dtype == np.float64
    assert (model.model.n_states, model.model.n_actions, model.model.n_tried) == (9, 4, 0)
    assert model._n_planning_updates == 0 and model._n_updates == 0
    # The table lives on the CPU whatever device is asked for (numpy shares its memory).
    meta = TabularDynaQ(
        "TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), device="meta"
    )
    assert meta.device == th.device("cpu") and meta.policy.q_table.device == th.device("cpu")
    kept = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"),
                        stats_window_size=5, verbose=1, seed=3)  # fmt: skip
    assert (kept._stats_window_size, kept.verbose, kept.seed) == (5, 1, 3)
    # Without an environment nothing is built until one is given (SB3's _init_setup_model).
    unbuilt = TabularDynaQ("TabularPolicy", None, _init_setup_model=False)
    assert unbuilt.env is None and getattr(unbuilt, "model", None) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gamma": 1.5}, "gamma must be a number in [0, 1], got 1.5"),
        ({"planning_steps": -1}, "planning_steps must be an integer in [0, inf), got -1"),
        ({"planning_steps": 2.0}, "planning_steps must be an integer, got 2.0"),
        ({"kappa": -0.1}, "kappa must be a number in [0, inf), got -0.1"),
        ({"exploration_final_eps": 1.5}, "exploration_final_eps must be a number in [0, 1], got 1.5"),
    ],
)
def test_tabular_argument_errors_are_exact(kwargs, message):
    with pytest.raises(ValueError, match=exact(message)):
        TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), **kwargs)


def test_tabular_boundary_arguments_are_accepted():
    env = gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index")
    model = TabularDynaQ("TabularPolicy", env, gamma=1.0, planning_steps=0, kappa=0.0)
    assert (model.gamma, model.planning_steps, model.kappa) == (1.0, 0, 0.0)
    assert TabularDynaQ("TabularPolicy", env, gamma=0.0).gamma == 0.0


def test_tabular_spaces_errors_are_exact():
    box = spaces.Box(0, 1, (2,))
    coords = gym.make("AdvRL/GridWorld-v0", size=3)
    message = (
        f"TabularDynaQ needs a Discrete observation space (a table indexed by state), got {coords.observation_space}; "
        "for grid worlds use obs_mode='index', otherwise use a function-approximation method such as Dyna"
    )
    with pytest.raises(ValueError, match=exact(message)):
        TabularDynaQ("TabularPolicy", coords)
    with pytest.raises(ValueError, match=exact(f"TabularQPolicy needs a Discrete action space, got {box}")):
        TabularQPolicy(spaces.Discrete(3), box)
    with pytest.raises(ValueError, match=exact(f"X needs a Discrete action space, got {box}")):
        check_tabular_spaces(spaces.Discrete(3), box, "X")
    check_tabular_spaces(spaces.Discrete(3), spaces.Discrete(2), "X")  # both Discrete: accepted


class OffsetChain(gym.Env):
    """A 4-state chain whose Discrete spaces do not start at 0: observations 10 to 13 (start 10),
    actions 1 (left) and 2 (right). Entering 13 pays 1 and terminates; other steps pay 0."""

    observation_space = spaces.Discrete(4, start=10)
    action_space = spaces.Discrete(2, start=1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return 10, {}

    def step(self, action):
        if int(action) not in (1, 2):
            raise ValueError(f"action must be 1 or 2, got {action!r}")
        self.position = max(self.position - 1, 0) if int(action) == 1 else self.position + 1
        terminated = self.position == 3
        return (
            10 + self.position,
            float(terminated),
            terminated,
            False,
            ({"is_success": True} if terminated else {}),
        )


def test_tabular_spaces_that_do_not_start_at_zero(tmp_path):
    """Rows and columns of the table are 0-based: state 10 is row 0, action 1 is column 0."""
    env = gym.wrappers.TimeLimit(OffsetChain(), max_episode_steps=30)
    model = csv_agent(tmp_path, env, planning_steps=5, learning_rate=0.5, gamma=0.9, seed=0)
    model.learn(300)
    assert len(model.ep_success_buffer) > 5 and all(model.ep_success_buffer)  # SB3's success statistics
    np.testing.assert_array_equal(model.model.next_state[:3], [[0, 1], [0, 2], [1, 3]])
    np.testing.assert_array_equal(model.model.terminal[:3], [[False, False], [False, False], [False, True]])
    assert model.model.reward[2, 1] == 1.0
    # Q-learning has converged to gamma^k along the chain (right: 1, 0.9, 0.81 from states 12, 11, 10).
    np.testing.assert_allclose(model.q_table[:3, 1], [0.81, 0.9, 1.0], atol=1e-3)
    observations = np.array([10, 11, 12])
    np.testing.assert_array_equal(model.predict(observations, deterministic=True)[0], [2, 2, 2])
    model.exploration_rate = 0.0
    for deterministic in (False, True):
        actions, state = model.predict(
            observations, state=("kept",), episode_start=np.ones(3, bool), deterministic=deterministic
        )
        assert actions.shape == (3,) and actions.tolist() == [2, 2, 2]
        assert state == ("kept",)  # no recurrent state: passed through, whatever episode_start says
        action, _ = model.predict(np.int64(11), deterministic=deterministic)  # one observation: one action
        assert np.ndim(action) == 0 and action == 2
        actions, _ = model.predict(np.array([11]), deterministic=deterministic)  # a batch of one
        assert actions.shape == (1,) and actions[0] == 2
    policy = model.policy
    np.testing.assert_array_equal(policy.state_index(th.tensor([10, 13])).numpy(), [0, 3])
    np.testing.assert_array_equal(policy(th.tensor([12])).numpy(), model.q_table[[2]])


def test_exploration_breaks_ties_at_random_and_explores_at_epsilon():
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), seed=0)
    states = np.zeros(20_000, dtype=np.int64)
    model.exploration_rate = 0.0
    q = model.q_table
    q[0] = [1.0, 3.0, 3.0, 0.0]  # actions 1 and 2 tie for the maximum
    counts = np.bincount(model._epsilon_greedy(states), minlength=4) / len(states)
    np.testing.assert_allclose(counts, [0.0, 0.5, 0.5, 0.0], atol=0.015)
    q[0] = [1.0, 3.0, 2.0, 0.0]
    model.exploration_rate = 0.4  # greedy 1 with 0.6 + 0.4 / 4, every other action 0.4 / 4
    counts = np.bincount(model._epsilon_greedy(states), minlength=4) / len(states)
    np.testing.assert_allclose(counts, [0.1, 0.7, 0.1, 0.1], atol=0.015)
    # Each state's own maximum: rows whose maxima differ (3, 5 and 0, all tied in the last row).
    model.exploration_rate = 0.0
    q[0] = [1.0, 3.0, 3.0, 0.0]
    q[1] = [5.0, 0.0, 5.0, 4.0]
    q[2] = [0.0, 0.0, 0.0, 0.0]
    mixed = np.repeat([0, 1, 2], 6000)
    actions = model._epsilon_greedy(mixed)
    for state, expected in ((0, [0.0, 0.5, 0.5, 0.0]), (1, [0.5, 0.0, 0.5, 0.0]), (2, [0.25] * 4)):
        counts = np.bincount(actions[mixed == state], minlength=4) / 6000
        np.testing.assert_allclose(counts, expected, atol=0.025)
    # predict() without deterministic=True is that behaviour policy; with it, the lowest greedy action.
    q[0] = [0.0, 3.0, 3.0, 0.0]
    model.exploration_rate = 0.0
    actions = np.array([model.predict(0)[0] for _ in range(400)])
    assert set(actions.tolist()) == {1, 2}
    assert {int(model.predict(0, deterministic=True)[0]) for _ in range(20)} == {1}


def test_tabular_train_logs_exact_td_errors_and_learning_rate(tmp_path):
    """The 2-env update of test_dyna.py: the logged TD errors are the mean absolute errors of the
    direct update (against the table before it) and of the planning sweep (after it)."""
    alpha, gamma = 0.5, 0.9
    model = csv_agent(tmp_path, gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"),
                      learning_rate=alpha, gamma=gamma, planning_steps=200, seed=0)  # fmt: skip
    q0 = np.random.default_rng(0).normal(size=(9, 4))
    model.q_table[:] = q0
    model.num_timesteps = 7
    model.train(TabularTransitions(np.array([0, 1]), np.array([1, 2]), np.array([1.0, -1.0]), np.array([1, 4]), np.array([False, True])))  # fmt: skip
    direct = np.array([1.0 + gamma * q0[1].max() - q0[0, 1], -1.0 - q0[1, 2]])
    after = q0.copy()
    after[0, 1] += alpha * direct[0]
    after[1, 2] += alpha * direct[1]
    logged = model.logger.name_to_value
    assert logged["train/learning_rate"] == alpha
    assert logged["train/td_error"] == pytest.approx(np.abs(direct).mean(), rel=1e-12)
    assert model._n_updates == 2 and model._n_planning_updates == 200
    np.testing.assert_array_equal(model.model.last_tried[[0, 1], [1, 2]], [7, 7])
    # One tried pair: every planning draw has the error of the sweep's update of that pair.
    single = csv_agent(tmp_path, gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"),
                       learning_rate=alpha, gamma=gamma, planning_steps=5)  # fmt: skip
    single.q_table[:] = q0
    single.train(TabularTransitions(np.array([0]), np.array([1]), np.array([1.0]), np.array([1]), np.array([False])))  # fmt: skip
    first = 1.0 + gamma * q0[1].max() - q0[0, 1]
    q01 = q0[0, 1] + alpha * first
    second = 1.0 + gamma * q0[1].max() - q01
    assert single.logger.name_to_value["train/td_error"] == pytest.approx(abs(first), rel=1e-12)
    assert single.logger.name_to_value["train/planning_td_error"] == pytest.approx(abs(second), rel=1e-12)
    assert single.q_table[0, 1] == pytest.approx(q01 + alpha * second, rel=1e-12)
    # Without planning nothing is planned and no planning error is logged.
    plain = csv_agent(tmp_path, gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), planning_steps=0)
    plain.train(TabularTransitions(np.array([0]), np.array([1]), np.array([1.0]), np.array([1]), np.array([False])))  # fmt: skip
    assert "train/planning_td_error" not in plain.logger.name_to_value
    assert plain.logger.name_to_value["train/td_error"] == pytest.approx(1.0)
    assert plain._n_planning_updates == 0


def test_tabular_learning_rate_schedule_follows_the_progress(tmp_path):
    model = csv_agent(tmp_path, gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"),
                      learning_rate=lambda progress: 0.5 * progress, planning_steps=0)  # fmt: skip
    model._current_progress_remaining = 0.25
    model.train(TabularTransitions(np.array([0]), np.array([1]), np.array([2.0]), np.array([1]), np.array([False])))  # fmt: skip
    assert model.logger.name_to_value["train/learning_rate"] == 0.125
    assert model.q_table[0, 1] == pytest.approx(0.125 * 2.0)


def test_truncation_is_not_termination_and_next_states_are_the_real_ones(tmp_path):
    """Episodes of 2 steps on a 3x3 grid never reach the goal: every episode ends by truncation,
    which the model must not store as termination, and each transition's next state is where the
    move led (the VecEnv's terminal observation), not the reset state."""
    env = gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index", max_episode_steps=2)
    model = csv_agent(tmp_path, env, exploration_initial_eps=1.0, exploration_final_eps=1.0, seed=0)
    model.learn(200)
    assert model.model.n_tried >= 6
    tried = model.model.tried
    np.testing.assert_array_equal(model.model.next_state[tried], grid_moves(3)[tried])
    assert not model.model.terminal.any()
    np.testing.assert_allclose(model.model.reward[tried], -0.1)
    assert model._episode_num == 100


def test_termination_ends_the_bootstrap_and_the_model_keeps_the_terminal_state(tmp_path):
    env = gym.make("AdvRL/GridWorld-v0", size=2, obs_mode="index", step_reward=-1.0, goal_reward=5.0)
    model = csv_agent(tmp_path, env, exploration_initial_eps=1.0, exploration_final_eps=1.0, seed=1,
                      learning_rate=1.0, gamma=0.5, planning_steps=0)  # fmt: skip
    model.learn(300)
    assert model.model.tried[[1, 2], [2, 1]].all()
    np.testing.assert_array_equal(model.model.next_state[[1, 2], [2, 1]], [3, 3])
    terminal = np.zeros((4, 4), dtype=bool)
    terminal[[1, 2], [2, 1]] = True
    np.testing.assert_array_equal(model.model.terminal, terminal)
    np.testing.assert_array_equal(model.model.reward[[1, 2], [2, 1]], [5.0, 5.0])
    # alpha = 1: the last update of each step into the goal set Q to the reward alone.
    np.testing.assert_array_equal(model.q_table[[1, 2], [2, 1]], [5.0, 5.0])


class StopAt(BaseCallback):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.ended = at, False

    def _on_step(self) -> bool:
        return self.num_timesteps < self.at

    def _on_training_end(self) -> None:
        self.ended = True


class StopAfterCalls(BaseCallback):
    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def _on_step(self) -> bool:
        return self.n_calls < self.calls


@pytest.mark.parametrize("n_envs", [1, 2])
def test_every_env_step_counts_once(n_envs):
    """Stopped by its own count of calls, learn() has counted n_envs steps per call."""
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=n_envs, env_kwargs={"size": 3, "obs_mode": "index"})
    model = TabularDynaQ("TabularPolicy", env, planning_steps=1, seed=0)
    model.learn(1000, callback=StopAfterCalls(7))
    assert model.num_timesteps == 7 * n_envs


def test_learn_stops_when_a_callback_says_so_and_returns_the_model(tmp_path):
    model = csv_agent(tmp_path, gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), seed=0)
    callback = StopAt(5)
    assert model.learn(100, callback=callback) is model
    assert callback.ended and model.num_timesteps == 5
    assert model._n_updates == 4  # the fifth step stopped before its update
    assert model.learn(3) is model and model.num_timesteps == 3  # reset_num_timesteps=True by default
    model.learn(3, reset_num_timesteps=False)
    assert model.num_timesteps == 6


def test_learn_with_two_envs_counts_every_env_step(tmp_path):
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs={"size": 3, "obs_mode": "index"})
    model = csv_agent(tmp_path, env, planning_steps=3, seed=0)
    model.learn(40)
    assert model.num_timesteps == 40 and model._n_updates == 40
    assert model._n_planning_updates == 20 * 3  # one planning sweep per (two-env) step


def test_dump_logs_every_log_interval_episodes(tmp_path):
    """log_interval=1: one CSV row per episode with the counters of the learner at that point."""
    env = gym.make("AdvRL/GridWorld-v0", size=2, obs_mode="index", max_episode_steps=3)
    model = csv_agent(tmp_path, env, planning_steps=2, seed=0)
    model.learn(60, log_interval=1)
    rows = csv_rows(tmp_path)
    assert len(rows) == model._episode_num >= 20
    for episode, row in enumerate(rows, 1):
        steps = int(row["time/total_timesteps"])
        assert int(row["time/episodes"]) == episode
        assert int(row["train/n_updates"]) == steps
        assert int(row["train/n_planning_updates"]) == 2 * steps
        assert 1 <= int(row["train/model_pairs"]) <= 16
        assert float(row["rollout/exploration_rate"]) == pytest.approx(0.1)
        assert -0.3 <= float(row["rollout/ep_rew_mean"]) <= 10
    assert int(rows[-1]["train/model_pairs"]) == model.model.n_tried
    assert float(rows[-1]["train/td_error"]) >= 0 and "train/planning_td_error" in rows[-1]


def test_dump_logs_default_interval_is_ten_episodes(tmp_path):
    env = gym.make("AdvRL/GridWorld-v0", size=2, obs_mode="index", max_episode_steps=2)
    model = csv_agent(tmp_path, env, planning_steps=0, seed=0)
    model.learn(60)
    assert model._episode_num >= 20
    assert [int(row["time/episodes"]) for row in csv_rows(tmp_path)] == list(
        range(10, model._episode_num + 1, 10)
    )


def test_tensorboard_run_is_named_after_the_algorithm(tmp_path):
    model = TabularDynaQ(
        "TabularPolicy",
        gym.make("AdvRL/GridWorld-v0", size=2, obs_mode="index"),
        tensorboard_log=str(tmp_path),
    )
    model.learn(5)
    assert [p.name for p in tmp_path.iterdir()] == ["TabularDynaQ_1"]


def test_tabular_policy_save_load_on_its_own(tmp_path):
    """SB3's policy-only save/load rebuilds the table policy from its constructor parameters."""
    policy = TabularQPolicy(spaces.Discrete(5, start=2), spaces.Discrete(3, start=1), initial_value=-1.5)
    np.testing.assert_array_equal(policy.q_table.numpy(), np.full((5, 3), -1.5))
    policy.q_table[4] = th.tensor([0.0, 7.0, 1.0], dtype=th.float64)
    policy.save(tmp_path / "policy.pt")
    loaded = TabularQPolicy.load(tmp_path / "policy.pt")
    assert loaded.initial_value == -1.5 and loaded.observation_space == spaces.Discrete(5, start=2)
    assert loaded.action_space == spaces.Discrete(3, start=1)
    np.testing.assert_array_equal(loaded.q_table.numpy(), policy.q_table.numpy())
    assert loaded.predict(np.array([6, 2]), deterministic=True)[0].tolist() == [2, 1]
    assert TabularQPolicy(spaces.Discrete(2), spaces.Discrete(2)).initial_value == 0.0


def test_tabular_seed_makes_exploration_reproducible():
    env = gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index")
    runs = []
    for _ in range(2):
        model = TabularDynaQ("TabularPolicy", env, seed=5)
        model.exploration_rate = 0.5
        runs.append(model._epsilon_greedy(np.arange(9).repeat(30)))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_tabular_save_load_keeps_model_rng_and_initial_value(tmp_path):
    env = gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index")
    model = TabularDynaQ("TabularPolicy", env, planning_steps=3, policy_kwargs={"initial_value": 2.5}, seed=0)
    assert model.policy.initial_value == 2.5
    np.testing.assert_array_equal(model.q_table, np.full((9, 4), 2.5))
    model.learn(50)
    model.save(tmp_path / "agent")
    loaded = TabularDynaQ.load(tmp_path / "agent", env=env)
    assert loaded.policy.initial_value == 2.5 and loaded.model is not model.model
    assert loaded.model.n_tried == model.model.n_tried and loaded.model.n_visited == model.model.n_visited
    np.testing.assert_array_equal(loaded.model.last_tried, model.model.last_tried)
    # The random generator continues where it stopped: the same exploratory actions follow.
    model.exploration_rate = loaded.exploration_rate = 0.5
    states = np.arange(9).repeat(20)
    np.testing.assert_array_equal(loaded._epsilon_greedy(states), model._epsilon_greedy(states))


# ---------------------------------------------------------------------------- the model buffer
def model_buffer(size: int, **kwargs) -> ModelReplayBuffer:
    return ModelReplayBuffer(size, spaces.Box(-10, 10, (2,)), spaces.Discrete(4), **kwargs)


def test_model_buffer_defaults():
    buffer = model_buffer(4)
    assert buffer.gamma == 0.99 and buffer.n_envs == 1 and buffer.device == th.device("cpu")
    assert buffer.discounts.shape == (4, 1) and buffer.discounts.dtype == np.float32
    np.testing.assert_allclose(buffer.discounts, 0.99)
    obs = np.ones((2, 2), dtype=np.float32)
    buffer.extend(obs, np.array([1, 2]), obs, np.zeros(2), np.zeros(2))
    assert buffer.pos == 2 and not buffer.full and buffer.size() == 2
    np.testing.assert_allclose(buffer.discounts[:2, 0], np.float32(0.99))
    np.testing.assert_allclose(buffer.sample(8).discounts.numpy(), np.float32(0.99))
    assert model_buffer(4, gamma=0.5).discounts[0, 0] == 0.5


def test_model_buffer_stores_and_samples_whole_batches_exactly():
    buffer = model_buffer(5, device="cpu", gamma=0.9)
    obs = np.arange(10, dtype=np.float32).reshape(5, 2)
    buffer.extend(
        obs, np.array([0, 1, 2, 3, 0]), obs + 0.5, np.arange(5) * -1.0, np.array([0, 1, 0, 0, 1]), np.linspace(0.1, 0.5, 5)
    )  # fmt: skip
    assert buffer.full and buffer.pos == 0 and buffer.size() == 5  # exactly full
    samples = buffer._get_samples(np.array([4, 1, 1]))
    np.testing.assert_array_equal(samples.observations.numpy(), obs[[4, 1, 1]])
    np.testing.assert_array_equal(samples.next_observations.numpy(), obs[[4, 1, 1]] + 0.5)
    np.testing.assert_array_equal(samples.actions.numpy(), [[0], [1], [1]])
    np.testing.assert_array_equal(samples.rewards.numpy(), [[-4.0], [-1.0], [-1.0]])
    np.testing.assert_array_equal(samples.dones.numpy(), [[1.0], [1.0], [1.0]])
    np.testing.assert_allclose(samples.discounts.numpy(), [[0.5], [0.2], [0.2]], rtol=1e-6)
    assert samples.discounts.dtype == th.float32


def test_model_buffer_add_stores_a_one_step_termination():
    """SB3's add() works too: a one-step transition with discount gamma, and a done is a
    termination even when flagged as a time-limit truncation (imagined data has no time limit)."""
    buffer = model_buffer(4, device="cpu", gamma=0.7)
    obs = np.array([[1.0, 2.0]], dtype=np.float32)
    buffer.add(
        obs, obs + 1, np.array([3]), np.array([0.5]), np.array([True]), [{"TimeLimit.truncated": True}]
    )
    samples = buffer._get_samples(np.array([0]))
    assert samples.dones.item() == 1.0 and samples.rewards.item() == 0.5
    assert samples.discounts.item() == pytest.approx(0.7)


def test_model_buffer_accepts_column_shaped_batches():
    """Batch-first arrays of any trailing shape: (n, 1) rewards, dones and discounts, (n, 1) actions."""
    buffer = model_buffer(4, device="cpu")
    obs = np.arange(6, dtype=np.float32).reshape(3, 2)
    buffer.extend(obs, np.array([[1], [2], [3]]), obs + 1, np.array([[0.5], [1.5], [2.5]]),
                  np.array([[1.0], [0.0], [1.0]]), np.array([[0.9], [0.8], [0.7]], dtype=np.float32))  # fmt: skip
    np.testing.assert_array_equal(buffer.rewards[:3, 0], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(buffer.dones[:3, 0], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(buffer.discounts[:3, 0], [0.9, 0.8, 0.7])
    np.testing.assert_array_equal(buffer.actions[:3, 0, 0], [1, 2, 3])


def test_model_buffer_keeps_the_newest_of_an_oversized_batch():
    buffer = model_buffer(3, device="cpu")
    buffer.extend(
        np.zeros((1, 2), np.float32), np.array([0]), np.zeros((1, 2), np.float32), np.zeros(1), np.zeros(1)
    )
    obs = np.arange(10, dtype=np.float32).reshape(5, 2)
    buffer.extend(obs, np.arange(5) % 4, obs + 1, np.arange(5.0), np.zeros(5), np.arange(5.0) / 10)
    assert buffer.full and buffer.pos == 1 and buffer.size() == 3
    # The last 3 of the 5 (rows 2, 3, 4), written from position 1 on.
    np.testing.assert_array_equal(buffer.observations[:, 0], obs[[4, 2, 3]])
    np.testing.assert_array_equal(buffer.next_observations[:, 0], obs[[4, 2, 3]] + 1)
    np.testing.assert_array_equal(buffer.actions[:, 0, 0], [0, 2, 3])
    np.testing.assert_array_equal(buffer.rewards[:, 0], [4.0, 2.0, 3.0])
    np.testing.assert_allclose(buffer.discounts[:, 0], [0.4, 0.2, 0.3])


class RecordingWriter(KVWriter):
    """Keeps what every logger dump writes: the values and the outputs each key is excluded from."""

    def __init__(self) -> None:
        self.dumps: list[tuple[dict, dict, int]] = []

    def write(self, key_values, key_excluded, step=0) -> None:
        self.dumps.append((dict(key_values), dict(key_excluded), step))


def test_dump_logs_keeps_counters_out_of_tensorboard_and_ends_episodes_as_sb3_does():
    """The counters are excluded from TensorBoard (as SB3's own), the model's size is not; the dump
    is at the current step. ``_last_episode_starts`` marks the envs whose episode just ended (SB3's
    convention) and log_interval=None never dumps."""
    writer = RecordingWriter()
    env = gym.make("AdvRL/GridWorld-v0", size=2, obs_mode="index", max_episode_steps=3)
    model = TabularDynaQ("TabularPolicy", env, planning_steps=1, seed=0)
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    model.learn(30, log_interval=2)
    assert len(writer.dumps) == model._episode_num // 2 >= 5
    values, excluded, step = writer.dumps[-1]
    assert step == values["time/total_timesteps"]
    for key in ("time/episodes", "train/n_updates", "train/n_planning_updates"):
        assert excluded[key] == ("tensorboard",)
    assert excluded["train/model_pairs"] == ("",)  # SB3's "excluded from nothing"
    assert values["time/episodes"] == 2 * len(writer.dumps)
    assert values["train/model_pairs"] == model.model.n_tried
    assert values["train/n_planning_updates"] == values["time/total_timesteps"]  # planning_steps=1
    # Episodes of one step (the goal is 4 steps away): every step ends one.
    one_step = TabularDynaQ(
        "TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index", max_episode_steps=1)
    )
    one_step.learn(2)
    np.testing.assert_array_equal(one_step._last_episode_starts, [True])
    assert one_step._episode_num == 2
    long = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"))
    long.learn(2)
    np.testing.assert_array_equal(long._last_episode_starts, [False])
    quiet = TabularDynaQ("TabularPolicy", env, planning_steps=1, seed=0)
    quiet_writer = RecordingWriter()
    quiet.set_logger(Logger(folder=None, output_formats=[quiet_writer]))
    quiet.learn(30, log_interval=None)
    assert quiet._episode_num >= 10 and quiet_writer.dumps == []


class SeesLocalsAndGlobals(BaseCallback):
    def _on_training_start(self) -> None:
        self.seen = (self.locals["total_timesteps"], "TabularTransitions" in self.globals)

    def _on_step(self) -> bool:
        self.last_actions = self.locals["actions"]
        return True


def test_learn_shows_no_progress_bar_by_default_and_callbacks_see_locals_and_globals(capfd):
    callback = SeesLocalsAndGlobals()
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), seed=0)
    model.learn(20, callback=callback)
    assert capfd.readouterr() == ("", "")
    assert callback.seen == (20, True) and callback.last_actions.shape == (1,)
    model.learn(5, progress_bar=True)
    assert "5/5" in capfd.readouterr().out


def test_the_table_stays_on_the_cpu_when_a_gpu_is_available(monkeypatch):
    """SB3's "auto" device would pick CUDA; the table must stay where numpy can share it."""
    monkeypatch.setattr(th.cuda, "is_available", lambda: True)
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"))
    assert model.device == th.device("cpu") and model.policy.q_table.device == th.device("cpu")


class StripTruncationFlags(VecEnvWrapper):
    """A VecEnv whose infos never carry "TimeLimit.truncated" (SB3's convention: a done step
    without it is a termination)."""

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            info.pop("TimeLimit.truncated", None)
        return obs, rewards, dones, infos


def test_a_done_without_a_truncation_flag_is_a_termination(tmp_path):
    venv = StripTruncationFlags(
        DummyVecEnv([lambda: gym.make("AdvRL/GridWorld-v0", size=2, obs_mode="index")])
    )
    model = csv_agent(
        tmp_path, venv, exploration_initial_eps=1.0, exploration_final_eps=1.0, seed=1, planning_steps=0
    )
    model.learn(300)
    terminal = np.zeros((4, 4), dtype=bool)
    terminal[[1, 2], [2, 1]] = True
    np.testing.assert_array_equal(model.model.terminal, terminal)
