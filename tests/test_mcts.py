"""MCTS over environment snapshots: optimal first actions against breadth-first search, a GHZ
circuit found on 3 qubits, the caller's env left untouched, PUCT with an SB3 prior, bad input."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, PPO

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.grid_world import MOVES
from sb3_ext.mcts import MCTS


def bfs_optimal_first_actions(grid) -> set[int]:
    """Every first action that starts a shortest path to the goal (breadth-first search backwards
    from the goal gives each cell its distance)."""
    rows, cols, walls, goal = grid.rows, grid.cols, grid.walls, tuple(grid.goal)

    def moved(cell, action):
        r, c = cell[0] + MOVES[action, 0], cell[1] + MOVES[action, 1]
        return (int(r), int(c)) if 0 <= r < rows and 0 <= c < cols and not walls[r, c] else cell

    distance = {goal: 0}
    queue = deque([goal])
    while queue:  # moves are reversible in a grid: BFS from the goal over neighbours
        cell = queue.popleft()
        for action in range(4):
            other = moved(cell, action)
            if other not in distance:
                distance[other] = distance[cell] + 1
                queue.append(other)
    start = tuple(grid.position)
    return {a for a in range(4) if distance.get(moved(start, a), 10**9) == distance[start] - 1}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 5, "walls": [(1, 1), (2, 1), (3, 1)]},
        {"size": 5, "walls": [(0, 1), (1, 1), (2, 1), (3, 1)]},  # only "down" starts a shortest path
        {"size": (4, 6), "walls": [(1, 2), (2, 2), (3, 2)], "start": (3, 0), "goal": (3, 5)},
    ],
    ids=["two-ways", "one-way", "detour"],
)
def test_first_action_is_optimal_by_breadth_first_search(kwargs) -> None:
    env = gym.make("AdvRL/GridWorld-v0", **kwargs)
    obs, _ = env.reset(seed=0)
    optimal = bfs_optimal_first_actions(env.unwrapped)
    assert 0 < len(optimal) < 4
    action, state = MCTS(env, n_simulations=400, gamma=0.9, seed=1).predict(obs)
    assert state is None and int(action) in optimal


def test_finds_a_ghz_circuit_on_three_qubits() -> None:
    env = gym.make("AdvRL/QuantumGate-v0", n_qubits=3, target="ghz")
    obs, _ = env.reset(seed=0)
    planner = MCTS(env, n_simulations=2_000, gamma=0.99, rollout_depth=3, seed=0)
    info, done = {}, False
    while not done:
        action, _ = planner.predict(obs)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    assert info["is_success"] and env.unwrapped.fidelity > 0.99
    assert len(info["gates"]) <= 8


def test_the_search_leaves_the_callers_env_untouched() -> None:
    env = gym.make("AdvRL/GridWorld-v0", size=6, slip=0.3)
    env.reset(seed=3)
    env.step(1)
    before = env.unwrapped.get_state()
    elapsed = env._elapsed_steps if hasattr(env, "_elapsed_steps") else env.env._elapsed_steps
    MCTS(env, n_simulations=50, max_depth=200, seed=0).predict()
    after = env.unwrapped.get_state()
    assert after["state"]["position"] == before["state"]["position"]
    assert after["state"]["np_random"].bit_generator.state == before["state"]["np_random"].bit_generator.state
    assert (env._elapsed_steps if hasattr(env, "_elapsed_steps") else env.env._elapsed_steps) == elapsed


def test_every_simulation_starts_from_the_root_including_the_time_limit() -> None:
    """A restored copy has the root's position, generator and TimeLimit count, however many steps
    the previous simulation took (else a later simulation would be truncated at once)."""
    env = gym.make("AdvRL/GridWorld-v0", size=5, slip=0.5, max_episode_steps=3)
    env.reset(seed=0)
    env.step(2)
    planner = MCTS(env, n_simulations=10, seed=0)
    sim, snapshot = planner._root()
    for _ in range(2):
        for action in (1, 1, 1):
            *_, truncated, _ = sim.step(action)
        assert truncated  # the root had 1 step of 3: two more truncate
        sim = planner._restore(sim, snapshot)
        assert sim._elapsed_steps == env._elapsed_steps == 1
        assert sim.unwrapped.position == env.unwrapped.position
        assert sim.unwrapped.np_random.random() == env.unwrapped.get_state()["state"]["np_random"].random()
        sim = planner._restore(sim, snapshot)


class Corridor(gym.Env):
    """A third-party env without snapshots: cells 0..6 from cell 2, actions left/right, reward +1
    on reaching cell 6 and -1 on reaching cell 0 (both end the episode), -0.01 per other step; the
    random generator decides nothing, but is there to be copied."""

    observation_space = gym.spaces.Discrete(7)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 2
        return self.cell, {}

    def step(self, action):
        self.cell += 1 if action == 1 else -1
        done = self.cell in (0, 6)
        reward = 1.0 if self.cell == 6 else -1.0 if self.cell == 0 else -0.01
        return self.cell, reward, done, False, {}


def test_third_party_env_without_snapshots_is_cloned_by_deepcopy() -> None:
    env = Corridor()
    obs, _ = env.reset(seed=0)
    assert not hasattr(env, "get_state")
    planner = MCTS(env, n_simulations=200, gamma=0.95, rollout_depth=10, seed=0)
    assert int(planner.predict(obs)[0]) == 1  # right: +1 four steps away, -1 two steps to the left
    assert env.cell == 2  # the caller's env was never stepped


class Uncopyable(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __deepcopy__(self, memo):
        raise TypeError("holds a live connection")


@pytest.mark.parametrize("prior_class", [DQN, PPO])
def test_puct_priors_come_from_the_sb3_model_and_need_the_observation(prior_class) -> None:
    import torch as th

    env = gym.make("AdvRL/GridWorld-v0", size=5)
    obs, _ = env.reset(seed=0)
    prior = prior_class("MlpPolicy", gym.make("AdvRL/GridWorld-v0", size=5), seed=0)
    planner = MCTS(env, n_simulations=60, gamma=0.9, prior_model=prior, seed=0)
    probs, value = planner._prior(obs)
    tensor = prior.policy.obs_to_tensor(obs)[0]
    with th.no_grad():
        if prior_class is DQN:
            q = prior.policy.q_net(tensor)[0]
            expected_probs, expected_value = th.softmax(q, -1).numpy(), float(q.max())
        else:
            expected_probs = prior.policy.get_distribution(tensor).distribution.probs[0].numpy()
            expected_value = float(prior.policy.predict_values(tensor)[0, 0])
    np.testing.assert_allclose(probs, expected_probs, rtol=1e-6)
    assert value == pytest.approx(expected_value)
    action, _ = planner.predict(obs)
    assert 0 <= int(action) < 4
    with pytest.raises(
        ValueError, match="observation: MCTS with a prior_model needs the current observation"
    ):
        planner.predict()


def test_puct_selection_is_the_formula() -> None:
    """argmax_a Q(s, a) + c_puct P(a|s) sqrt(N(s)) / (1 + N(s, a)), Q = r + gamma V(child)."""
    from sb3_ext.mcts.mcts import _Node

    env = gym.make("AdvRL/GridWorld-v0", size=5)
    prior = DQN("MlpPolicy", gym.make("AdvRL/GridWorld-v0", size=5), seed=0)
    planner = MCTS(env, prior_model=prior, c_puct=2.0, gamma=0.5, seed=0)
    node = _Node()
    node.priors = np.array([0.1, 0.6, 0.2, 0.1])
    node.visits = 9
    for action, (visits, value_sum, reward) in {
        0: (4, 2.0, 0.3),
        1: (3, -3.0, 0.0),
        2: (1, 0.5, -0.1),
    }.items():
        child = _Node()
        child.visits, child.value_sum, child.reward = visits, value_sum, reward
        node.children[action] = child
    scores = {
        0: 0.3 + 0.5 * 0.5 + 2.0 * 0.1 * 3 / 5,
        1: 0.0 + 0.5 * -1.0 + 2.0 * 0.6 * 3 / 4,
        2: -0.1 + 0.5 * 0.5 + 2.0 * 0.2 * 3 / 2,
        3: 0.0 + 2.0 * 0.1 * 3 / 1,
    }
    assert planner._select(node) == max(scores, key=scores.get)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MCTS(gym.make("AdvRL/GridWorld-v0"), n_simulations=0), "n_simulations"),
        (lambda: MCTS(gym.make("AdvRL/Pendulum-v0")), "action_space: MCTS needs Discrete actions"),
        (lambda: MCTS(Uncopyable()), "env: MCTS needs an env it can clone"),
        (
            lambda: MCTS(gym.make("AdvRL/GridWorld-v0"), rollout_depth=-1),
            "rollout_depth must be an integer >= 0",
        ),
        (lambda: MCTS(gym.make("AdvRL/GridWorld-v0"), prior_model="ppo"), "prior_model must be an SB3 model"),
        (lambda: MCTS("AdvRL/GridWorld-v0"), "env must be a gymnasium.Env"),
        (lambda: MCTS(gym.make("AdvRL/GridWorld-v0"), gamma=1.5), "gamma"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_same_seed_same_plan_on_a_slippery_grid() -> None:
    env = gym.make("AdvRL/GridWorld-v0", size=6, slip=0.2)
    obs, _ = env.reset(seed=4)
    first = MCTS(env, n_simulations=100, seed=7).search()
    second = MCTS(env, n_simulations=100, seed=7).search()
    assert first == second
    assert np.isfinite([q for _, q in first.values()]).all()
