"""GridWorld and FourRooms: layout, rewards, slip statistics, observation modes, goal moves."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs import FourRoomsEnv, GridWorldEnv
from gym_advrl.envs.grid_world import MOVES

UP, RIGHT, DOWN, LEFT = range(4)


def shortest_path_actions(env: GridWorldEnv) -> list[int]:
    """Breadth-first search over the deterministic grid from the current position to the goal."""
    start, goal = env.position, env.goal
    parents: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for action, (dr, dc) in enumerate(MOVES):
            nxt = (cell[0] + int(dr), cell[1] + int(dc))
            if (
                0 <= nxt[0] < env.rows
                and 0 <= nxt[1] < env.cols
                and not env.walls[nxt]
                and nxt not in parents
            ):
                parents[nxt] = (cell, action)
                queue.append(nxt)
    actions, cell = [], goal
    while parents[cell] is not None:
        cell, action = parents[cell]
        actions.append(action)
    return actions[::-1]


def test_default_grid_optimal_return_is_9_3() -> None:
    env = gym.make("AdvRL/GridWorld-v0")
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0, 0])
    assert info["goal"] == (4, 4)
    path = shortest_path_actions(env.unwrapped)
    assert len(path) == 8
    total = 0.0
    for i, action in enumerate(path):
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        assert terminated == (i == len(path) - 1) and not truncated
    assert total == pytest.approx(9.3)
    np.testing.assert_array_equal(obs, [4, 4])


def test_rectangular_grid_spaces_and_indexing() -> None:
    coords = GridWorldEnv(size=(3, 6))
    np.testing.assert_array_equal(coords.observation_space.high, [2, 5])
    assert coords.goal == (2, 5)
    index = GridWorldEnv(size=(3, 6), obs_mode="index")
    assert index.observation_space.n == 18
    obs, _ = index.reset(seed=0)
    assert obs == 0
    assert index.step(RIGHT)[0] == 1
    assert index.step(DOWN)[0] == 7  # row 1, col 1


def test_walls_and_edges_block_moves() -> None:
    env = GridWorldEnv(size=4, walls=[(0, 1), (1, 0)])
    env.reset(seed=0)
    for action in (UP, LEFT, RIGHT, DOWN):
        obs, reward, terminated, *_ = env.step(action)
        np.testing.assert_array_equal(obs, [0, 0])
        assert reward == pytest.approx(-0.1) and not terminated


def test_layout_sets_walls_start_and_goal() -> None:
    env = GridWorldEnv(layout="S.#\n..#\n..G")
    assert (env.rows, env.cols) == (3, 3) and env.start == (0, 0) and env.goal == (2, 2)
    assert env.walls[0, 2] and env.walls[1, 2] and env.walls.sum() == 2
    env.reset(seed=0)
    assert len(shortest_path_actions(env)) == 4
    with pytest.raises(ValueError, match="layout"):
        GridWorldEnv(layout="S.G\n.S.")


def test_slip_sends_moves_uniformly_to_the_other_directions() -> None:
    env = GridWorldEnv(size=5, start=(2, 2), goal=(0, 0), slip=0.3)
    counts = np.zeros(4)
    n = 6000
    env.reset(seed=0)
    for _ in range(n):
        env.reset()
        obs, *_ = env.step(RIGHT)
        delta = obs - np.array([2, 2])
        counts[[tuple(m) for m in MOVES.tolist()].index(tuple(int(v) for v in delta))] += 1
    freq = counts / n
    sigma = np.sqrt(0.7 * 0.3 / n)
    assert abs(freq[RIGHT] - 0.7) < 4 * sigma
    for other in (UP, DOWN, LEFT):
        assert abs(freq[other] - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n)


def test_rgb_observations_show_agent_goal_and_walls() -> None:
    env = GridWorldEnv(size=(4, 5), walls=[(1, 1)], obs_mode="rgb", cell_px=6)
    assert env.observation_space.shape == (24, 30, 3)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and env.observation_space.contains(obs)
    agent, goal, wall, free = obs[3, 3], obs[3 * 6 + 3, 4 * 6 + 3], obs[9, 9], obs[3, 9]
    assert len({tuple(agent), tuple(goal), tuple(wall), tuple(free)}) == 4
    obs, *_ = env.step(RIGHT)
    np.testing.assert_array_equal(obs[3, 9], agent)
    np.testing.assert_array_equal(obs[3, 3], free)


def test_reset_goal_option_moves_the_goal_and_persists() -> None:
    env = gym.make("AdvRL/GridWorld-v0")
    _, info = env.reset(seed=0, options={"goal": (0, 2)})
    assert info["goal"] == (0, 2)
    env.step(RIGHT)
    assert env.step(RIGHT)[2], "reaching the moved goal terminates"
    _, info = env.reset()
    assert info["goal"] == (0, 2), "the goal stays where it was moved"
    *_, terminated, _, _ = env.step(DOWN)
    assert not terminated
    with pytest.raises(ValueError, match="goal"):
        env.reset(options={"goal": (0, 0)})


def test_ansi_render_marks_agent_goal_walls() -> None:
    env = GridWorldEnv(size=3, walls=[(1, 1)], render_mode="ansi")
    env.reset(seed=0)
    assert env.render() == "A..\n.#.\n..G\n"


# ---------------------------------------------------------------------------- FourRooms
def test_four_rooms_standard_layout() -> None:
    env = FourRoomsEnv()
    assert env.walls.shape == (13, 13)
    assert int((~env.walls).sum()) == 104
    assert env.goal == (7, 9) and env.observation_space.n == 169
    # Four hallways: free cells on the inner walls.
    hallways = [(3, 6), (10, 6), (6, 2), (7, 9)]
    for cell in hallways:
        assert not env.walls[cell]
    assert gym.spec("AdvRL/FourRooms-v0").max_episode_steps == 500


def test_four_rooms_moves_succeed_with_probability_two_thirds() -> None:
    env = FourRoomsEnv(obs_mode="coords")
    env.reset(seed=1)
    n, hits = 6000, 0
    for _ in range(n):
        env.position = (2, 2)  # room centre: every direction is open
        obs, reward, terminated, *_ = env.step(UP)
        hits += tuple(obs.astype(int)) == (1, 2)
        assert reward == 0.0 and not terminated
    sigma = np.sqrt((2 / 3) * (1 / 3) / n)
    assert abs(hits / n - 2 / 3) < 4 * sigma


def test_four_rooms_reward_and_uniform_start() -> None:
    env = FourRoomsEnv()
    starts = np.zeros(169)
    env.reset(seed=0)
    for _ in range(5000):
        obs, _ = env.reset()
        starts[obs] += 1
    visited = starts > 0
    assert visited.sum() == 103, "every free cell but the goal can be a start"
    assert not visited[7 * 13 + 9] and not visited[env.walls.ravel()].any()
    expected = 5000 / 103
    chi2 = float(np.sum((starts[visited] - expected) ** 2 / expected))
    assert chi2 < 160, chi2  # 102 degrees of freedom; p ~ 0.0003
    env.position = (6, 9)
    rewards = []
    for _ in range(50):
        env.position = (6, 9)
        _, reward, terminated, *_ = env.step(DOWN)
        rewards.append(reward)
        assert terminated == (reward == 1.0)
    assert set(rewards) <= {0.0, 1.0} and 1.0 in rewards


def test_dyna_maze_layout_shortest_path() -> None:
    from gym_advrl.envs.grid_world import DYNA_MAZE

    env = GridWorldEnv(layout=DYNA_MAZE)
    env.reset(seed=0)
    path = shortest_path_actions(env)
    assert len(path) == 14
    rewards = [env.step(action)[1] for action in path]
    assert sum(rewards) == pytest.approx(8.7)
