"""Exact behaviour of the grid-world and sequence envs: moves, rewards, layouts, rendering, arguments.

Complements test_grid_world.py and test_sequence_envs.py (optimal returns, slip statistics,
memory and chance levels) with exact observations per step, every edge of the grid, the
layout parser, argument messages, random starts and the ANSI and RGB renderings.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs import FourRoomsEnv, GridWorldEnv, SequenceMemoryEnv, SequenceTrackingEnv
from gym_advrl.envs.grid_world import FOUR_ROOMS_GOAL, parse_layout

UP, RIGHT, DOWN, LEFT = range(4)
FREE, WALL, GOAL, AGENT = (255, 255, 255), (40, 40, 40), (60, 180, 75), (230, 25, 75)


# ---------------------------------------------------------------------------- layouts
def test_parse_layout_reads_walls_markers_and_pads_rows() -> None:
    walls, start, goal = parse_layout("S.#\n\n. G #\n#")
    np.testing.assert_array_equal(
        walls, [[False, False, True, False, False], [False, False, False, False, True], [True] + [False] * 4]
    )
    assert (start, goal) == ((0, 0), (1, 2)) and walls.dtype == bool
    walls, start, goal = parse_layout("..\n..")
    assert start is None and goal is None and not walls.any() and walls.shape == (2, 2)
    assert isinstance(parse_layout(".S")[1][1], int)
    # A row of spaces is a row of free cells, not a blank line.
    walls, _, _ = parse_layout("..\n  \n..")
    assert walls.shape == (3, 2) and not walls.any()
    # 1000 rows or columns are allowed.
    assert parse_layout("." * 1000)[0].shape == (1, 1000)
    assert parse_layout(".\n" * 1000)[0].shape == (1000, 1)


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        (5, "layout must be a string of rows made of '#', '.', ' ', 'S', 'G', got int"),
        ("", "layout must contain at least one row"),
        ("\n\n", "layout must contain at least one row"),
        (".x\n.y", r"layout may only contain '#', '.', ' ', 'S', 'G'; found \['x', 'y'\]"),
        ("..\nX", r"layout may only contain '#', '.', ' ', 'S', 'G'; found \['X'\]$"),
        ("GG.", "layout may contain at most one 'G', found 2"),
        ("S.\nS.", "layout may contain at most one 'S', found 2"),
        ("." * 1001, "layout may have at most 1000 rows and columns, got 1 x 1001"),
        (".\n" * 1001, "layout may have at most 1000 rows and columns, got 1001 x 1"),
    ],
)
def test_parse_layout_rejects_bad_layouts(layout: object, match: str) -> None:
    with pytest.raises(ValueError, match="^" + match):
        parse_layout(layout)


def test_layout_markers_set_start_and_goal_unless_given() -> None:
    env = GridWorldEnv(layout="...\n.S.\n..G")
    assert env.start == (1, 1) and env.goal == (2, 2) and (env.rows, env.cols) == (3, 3)
    assert GridWorldEnv(layout="...\n.S.\n..G", start=(0, 2)).start == (0, 2)
    assert GridWorldEnv(layout="...\n.S.\n..G", start=[0, 0]).start == (0, 0)  # only the default is replaced
    assert GridWorldEnv(layout="...\n.S.\n..G", goal=(0, 1)).goal == (0, 1)
    assert GridWorldEnv(layout="....\n....").goal == (1, 3)  # no G: bottom-right
    with pytest.raises(
        ValueError, match=r"^start \(0, 0\) is a wall \(see walls or layout\); it must be a free cell"
    ):
        GridWorldEnv(layout="#..\n...")
    assert GridWorldEnv(layout="#S.\n..G").start == (0, 1)


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 1}, r"size\[0\] \(rows\)"),
        ({"size": (5, 1001)}, r"size\[1\] \(cols\)"),
        ({"size": (1001, 5)}, r"size\[0\] \(rows\)"),
        ({"size": (5, 1)}, r"size\[1\] \(cols\)"),
        ({"size": True}, r"size must be an int in 2..1000 or a \(rows, cols\) pair, got True"),
        ({"size": "55"}, "size must be an int in 2..1000 or a"),
        ({"size": (2, 3, 4)}, "size must be an int in 2..1000 or a"),
        ({"size": 4.5}, "size must be an int"),
        (
            {"goal": (5, 0)},
            r"goal must be a \(row, col\) cell with 0 <= row < 5 and 0 <= col < 5, got \(5, 0\)",
        ),
        ({"goal": (0, -1)}, r"goal must be a \(row, col\) cell with 0 <= row < 5 and 0 <= col < 5"),
        ({"start": (0, 5)}, "start must be a"),
        ({"goal": (1,)}, "goal must be a"),
        ({"goal": "ab"}, "goal must be a"),
        ({"walls": "ab"}, "walls must be a sequence of \\(row, col\\) cells, got 'ab'"),
        ({"walls": 3}, "walls must be a sequence of"),
        ({"walls": [(0, 1), (9, 9)]}, r"walls\[1\] must be a \(row, col\) cell"),
        ({"walls": [(4, 4)]}, r"goal \(4, 4\) is a wall"),
        ({"start": (2, 2), "goal": (2, 2)}, r"start and goal must differ, both are \(2, 2\)"),
        (
            {"start": None, "size": 2, "walls": [(0, 0), (0, 1), (1, 0)]},
            "start=None draws a free cell other than the goal",
        ),
        ({"slip": 1.5}, "slip"),
        ({"cell_px": 65}, "cell_px"),
        ({"cell_px": 0}, "cell_px"),
        ({"step_reward": 2e6}, "step_reward"),
        ({"goal_reward": -2e6}, "goal_reward"),
        ({"obs_mode": "pixels"}, "obs_mode"),
        (
            {"obs_mode": "rgb", "size": (65, 10), "cell_px": 64},
            r"cell_px=64 makes 4160 x 640 rgb observations",
        ),
        (
            {"obs_mode": "rgb", "size": (10, 65), "cell_px": 64},
            r"cell_px=64 makes 640 x 4160 rgb observations; rows \* cell_px and cols \* cell_px must be at most 4096$",
        ),
    ],
)
def test_grid_arguments_are_checked(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match="^" + match):
        GridWorldEnv(**kwargs)


def test_argument_forms_and_limits_that_are_accepted() -> None:
    assert (GridWorldEnv(size=np.array([3, 4])).rows, GridWorldEnv(size=np.array([3, 4])).cols) == (3, 4)
    assert GridWorldEnv(size=np.int64(3)).goal == (2, 2)
    assert GridWorldEnv(size=[2, 1000]).goal == (1, 999)
    assert GridWorldEnv(walls=np.array([[1, 1]])).walls.sum() == 1
    env = GridWorldEnv(obs_mode="rgb", size=(64, 2), cell_px=64)  # exactly 4096 pixels
    assert env.observation_space.shape == (4096, 128, 3)
    GridWorldEnv(start=None, size=2, walls=[(0, 0), (0, 1)])  # two free cells: enough
    GridWorldEnv(slip=1.0, cell_px=64, step_reward=-1e6, goal_reward=1e6)
    env = GridWorldEnv(size=(3, 6))
    assert env.observation_space.dtype == np.float32
    np.testing.assert_array_equal(env.observation_space.low, [0, 0])


# ---------------------------------------------------------------------------- dynamics
def test_every_edge_of_the_grid_blocks_the_move_out() -> None:
    env = GridWorldEnv(size=(3, 4), goal=(1, 1), start=(0, 0))
    corners = {(0, 0): (UP, LEFT), (0, 3): (UP, RIGHT), (2, 0): (DOWN, LEFT), (2, 3): (DOWN, RIGHT)}
    for cell, blocked in corners.items():
        for action in range(4):
            env.reset()
            env.position = cell
            obs, reward, terminated, truncated, info = env.step(action)
            expected = cell if action in blocked else (
                cell[0] + (-1, 0, 1, 0)[action], cell[1] + (0, 1, 0, -1)[action]
            )  # fmt: skip
            assert info["position"] == expected and tuple(obs.astype(int)) == expected
            assert terminated == (expected == (1, 1)) and truncated is False
            assert reward == (10.0 if terminated else -0.1)


def test_custom_rewards_and_index_observations() -> None:
    env = GridWorldEnv(size=(2, 3), obs_mode="index", step_reward=-2.5, goal_reward=7.0, start=(0, 1))
    obs, info = env.reset()
    assert obs == 1 and info == {"position": (0, 1), "goal": (1, 2)}
    assert env.step(RIGHT)[:3] == (2, -2.5, False)
    assert env.step(DOWN)[:3] == (5, 7.0, True)
    assert isinstance(env.reset()[0], int)


def test_slip_one_always_moves_another_way_and_no_slip_draws_nothing() -> None:
    env = GridWorldEnv(size=3, start=(1, 1), goal=(0, 0), slip=1.0)
    env.reset(seed=0)
    moves = set()
    for _ in range(200):
        env.reset()
        moves.add(env.step(RIGHT)[4]["position"])
    assert moves == {(0, 1), (2, 1), (1, 0)}  # up, down, left; never right
    # Without slip, steps draw no randomness: random starts follow the seed alone.
    stepped, fresh = GridWorldEnv(size=6, start=None), GridWorldEnv(size=6, start=None)
    stepped.reset(seed=1)
    fresh.reset(seed=1)
    for action in (0, 1, 2, 3, 1):
        stepped.step(action)
    assert [stepped.reset()[1]["position"] for _ in range(5)] == [
        fresh.reset()[1]["position"] for _ in range(5)
    ]


def test_random_starts_cover_every_free_cell_but_the_goal() -> None:
    env = GridWorldEnv(size=3, start=None, walls=[(1, 1)], goal=(0, 2))
    env.reset(seed=0)
    starts = [env.reset()[1]["position"] for _ in range(700)]
    free = {(r, c) for r in range(3) for c in range(3)} - {(1, 1), (0, 2)}
    assert set(starts) == free
    counts = np.array([starts.count(cell) for cell in sorted(free)])
    assert np.all(np.abs(counts / 700 - 1 / 7) < 0.05)
    _, info = env.reset(options={"goal": (2, 2)})
    assert info["goal"] == (2, 2)
    assert (0, 2) in {env.reset()[1]["position"] for _ in range(200)}  # the old goal is a start again
    assert all(env.reset()[1]["position"] != (2, 2) for _ in range(200))


def test_goal_option_errors() -> None:
    env = GridWorldEnv(size=4, walls=[(1, 1)])
    with pytest.raises(ValueError, match=r"^goal \(1, 1\) is a wall"):
        env.reset(options={"goal": (1, 1)})
    with pytest.raises(ValueError, match=r"^goal \(0, 0\) must differ from the start cell"):
        env.reset(options={"goal": (0, 0)})
    with pytest.raises(
        ValueError, match=r"^unknown reset option\(s\) \['start'\]; allowed options are \('goal',\)$"
    ):
        env.reset(options={"start": (0, 0)})
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)"):
        env.step(0)
    env = GridWorldEnv()
    env.reset()
    with pytest.raises(ValueError, match="^action"):
        env.step(4)


# ---------------------------------------------------------------------------- rendering
def test_rgb_observation_colours_every_cell() -> None:
    env = GridWorldEnv(size=(2, 3), walls=[(0, 2)], obs_mode="rgb", cell_px=2, start=(0, 0), goal=(1, 2))
    obs, _ = env.reset()
    expected = np.array([[AGENT, FREE, WALL], [FREE, FREE, GOAL]], dtype=np.uint8)
    np.testing.assert_array_equal(obs, expected.repeat(2, axis=0).repeat(2, axis=1))
    env.step(DOWN)
    env.step(RIGHT)
    obs, *_ = env.step(RIGHT)  # the agent stands on the goal: drawn as the agent
    expected = np.array([[FREE, FREE, WALL], [FREE, FREE, AGENT]], dtype=np.uint8)
    np.testing.assert_array_equal(obs, expected.repeat(2, axis=0).repeat(2, axis=1))


def test_rendered_frames_scale_cells_to_about_1024_pixels() -> None:
    for size, side in ((5, 160), (40, 1000), (100, 1000), (1000, 1000), (2, 64)):
        env = GridWorldEnv(size=size, render_mode="rgb_array")
        env.reset()
        frame = env.render()
        assert frame.shape == (side, side, 3), size
    env = GridWorldEnv(size=(3, 50), render_mode="rgb_array")
    env.reset()
    frame = env.render()
    assert frame.shape == (60, 1000, 3)
    np.testing.assert_array_equal(frame[:20, :20], np.broadcast_to(AGENT, (20, 20, 3)))
    np.testing.assert_array_equal(frame[-20:, -20:], np.broadcast_to(GOAL, (20, 20, 3)))
    with pytest.raises(gym.error.ResetNeeded):
        GridWorldEnv(render_mode="rgb_array").render()


def test_ansi_text() -> None:
    env = GridWorldEnv(size=(3, 4), walls=[(1, 1), (0, 3)], render_mode="ansi")
    env.reset()
    assert env.render() == "A..#\n.#..\n...G\n"
    env.step(DOWN)
    assert env.render() == "...#\nA#..\n...G\n"


# ---------------------------------------------------------------------------- four rooms
def test_four_rooms_defaults() -> None:
    env = FourRoomsEnv()
    assert env.goal == FOUR_ROOMS_GOAL == (7, 9) and env.slip == pytest.approx(1 / 3)
    assert env.observation_space == gym.spaces.Discrete(169) and env.start is None
    assert (env.step_reward, env.goal_reward) == (0.0, 1.0) and int((~env.walls).sum()) == 104
    coords = FourRoomsEnv(obs_mode="coords", goal=(1, 1), slip=0.0, cell_px=4)
    assert coords.goal == (1, 1) and coords.slip == 0.0 and coords.cell_px == 4
    obs, _ = coords.reset(seed=0)
    assert obs.shape == (2,)
    assert FourRoomsEnv(obs_mode="rgb", cell_px=2).observation_space.shape == (26, 26, 3)
    with pytest.raises(ValueError, match="^layout|unexpected|keyword|argument"):
        FourRoomsEnv(layout="..")


# ---------------------------------------------------------------------------- sequence memory
def test_sequence_memory_observations_step_by_step() -> None:
    env = SequenceMemoryEnv(n_symbols=3, delay=2)
    obs, info = env.reset(seed=0)
    cue = info["cue"]
    assert info == {"cue": cue, "t": 0} and env.query_step == 3
    expected = np.zeros(5, dtype=np.float32)
    expected[[cue, 3]] = 1.0
    np.testing.assert_array_equal(obs, expected)
    for t in (1, 2):
        obs, reward, terminated, truncated, info = env.step((cue + 1) % 3)
        np.testing.assert_array_equal(obs, np.zeros(5))
        assert (reward, terminated, truncated, info) == (0.0, False, False, {"cue": cue, "t": t})
    obs, reward, terminated, _, info = env.step(0)
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 1])  # the query flag only
    assert reward == 0.0 and not terminated and info == {"cue": cue, "t": 3}
    obs, reward, terminated, truncated, info = env.step(cue)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info == {"cue": cue, "t": 3, "success": True}
    env.reset(seed=0)
    for _ in range(3):
        env.step(0)
    _, reward, terminated, _, info = env.step((cue + 1) % 3)
    assert (reward, terminated, info["success"]) == (-1.0, True, False)


def test_sequence_memory_without_delay_and_with_distractors() -> None:
    env = SequenceMemoryEnv(delay=0)
    _, info = env.reset(seed=1)
    obs, _, terminated, _, _ = env.step(0)
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0, 1])
    assert not terminated
    assert env.step(info["cue"])[1] == 1.0
    env = SequenceMemoryEnv(n_symbols=5, delay=30, distractors=True)
    env.reset(seed=2)
    shown = []
    for t in range(1, 32):
        obs, *_ = env.step(0)
        if t < 31:
            assert obs[:5].sum() == 1.0 and obs[5:].tolist() == [0.0, 0.0]
            shown.append(int(np.argmax(obs[:5])))
        else:
            np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0, 0, 1])
    assert set(shown) == set(range(5))


def test_sequence_memory_arguments_and_calls() -> None:
    for kwargs, match in (
        ({"n_symbols": 1}, "n_symbols"),
        ({"n_symbols": 9}, "n_symbols"),
        ({"delay": -1}, "delay"),
        ({"delay": 999}, "delay"),
        ({"distractors": 1}, "distractors must be True or False, got 1"),
        ({"distractors": "yes"}, "distractors must be True or False, got 'yes'"),
    ):
        with pytest.raises(ValueError, match="^" + match):
            SequenceMemoryEnv(**kwargs)
    assert SequenceMemoryEnv(n_symbols=8, delay=998, distractors=np.bool_(True)).distractors is True
    assert SequenceMemoryEnv(n_symbols=2).observation_space.shape == (4,)
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)$"):
        SequenceMemoryEnv().step(0)
    with pytest.raises(ValueError, match=r"^unknown reset option\(s\) \['cue'\]"):
        SequenceMemoryEnv().reset(options={"cue": 1})
    with pytest.raises(ValueError, match="^action"):
        env = SequenceMemoryEnv()
        env.reset(seed=0)
        env.step(4)


def test_sequence_memory_renderings() -> None:
    env = SequenceMemoryEnv(delay=2, render_mode="ansi")
    _, info = env.reset(seed=0)
    cue = info["cue"]
    assert env.render() == f"t=  0 cue   symbol={cue} last_action=None\n"
    env.step(1)
    assert env.render() == "t=  1 delay symbol=- last_action=1\n"
    env.step(2)
    env.step(3)
    assert env.render() == "t=  3 QUERY symbol=- last_action=3\n"
    palette = [(228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163)]
    rgb = SequenceMemoryEnv(delay=2, render_mode="rgb_array")
    _, info = rgb.reset(seed=0)
    frame = rgb.render()
    assert frame.shape == (32, 4 * 32, 3)
    cells = frame[16, 16::32]
    assert tuple(cells[0]) == tuple(v // 2 for v in palette[info["cue"]])  # the current cell is darkened
    assert [tuple(c) for c in cells[1:3]] == [(240, 240, 240)] * 2 and tuple(cells[3]) == (0, 0, 0)
    rgb.step(2)
    cells = rgb.render()[16, 16::32]
    assert tuple(cells[0]) == palette[info["cue"]] and tuple(cells[1]) == (120, 120, 120)
    assert tuple(cells[3]) == palette[2]  # the query cell shows the last action
    rgb.step(1)
    rgb.step(3)
    cells = rgb.render()[16, 16::32]
    assert tuple(cells[3]) == tuple(v // 2 for v in palette[3]) and tuple(cells[2]) == (240, 240, 240)


# ---------------------------------------------------------------------------- sequence tracking
def test_sequence_tracking_exact_steps_and_truncation() -> None:
    env = SequenceTrackingEnv(episode_length=4)
    obs, info = env.reset(seed=0)
    value = float(obs[0])
    assert info == {} and obs[1] == obs[0] and obs[2] == 0.0 and obs[3] == 0.0
    env.history = [0.95]
    values = [0.95]
    for t, action in enumerate((1, 1, 0, 0), start=1):
        obs, reward, terminated, truncated, _ = env.step(action)
        values.append(min(max(values[-1] + (0.1 if action else -0.1), 0.0), 1.0))
        mean = np.mean(values[-3:])
        np.testing.assert_allclose(obs, [values[-1], mean, 1.0 if action else -1.0, t / 4], rtol=1e-6)
        assert reward == pytest.approx(1.0 - 2.0 * abs(mean - 0.5), abs=1e-12)
        assert terminated is False and truncated == (t == 4)
    assert values[:3] == [0.95, 1.0, 1.0]  # clipped at 1
    obs, *_ = env.step(0)  # stepping past the end: the time fraction stays 1
    assert obs[3] == 1.0
    env.history = [0.05]
    obs, reward, *_ = env.step(0)
    assert obs[0] == 0.0 and obs[1] == pytest.approx(0.025)
    assert value != 0.95


def test_sequence_tracking_starts_uniformly_and_draws_the_start() -> None:
    env = SequenceTrackingEnv(render_mode="rgb_array")
    starts = np.array([env.reset(seed=s)[0][0] for s in range(60)])
    assert starts.min() < 0.1 and starts.max() > 0.9 and len(np.unique(starts)) == 60
    value = float(env.reset(seed=0)[0][0])
    column = env.render()[::4, 1]
    blue = np.all(column == (55, 126, 184), axis=1)
    assert blue[-1] and blue.sum() == round(value * 99) + 1 - (round(value * 99) >= 49)
    with pytest.raises(ValueError, match=r"^unknown reset option\(s\) \['value'\]"):
        env.reset(options={"value": 0.5})


def test_sequence_tracking_history_and_arguments() -> None:
    env = SequenceTrackingEnv()
    env.history = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert list(env.history) == [0.3, 0.4, 0.5] and env.history.maxlen == 3
    with pytest.raises(ValueError, match="^episode_length"):
        SequenceTrackingEnv(episode_length=1)
    SequenceTrackingEnv(episode_length=2)
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)"):
        SequenceTrackingEnv().step(0)
    assert SequenceTrackingEnv().reset(seed=0)[0].dtype == np.float32
    space = SequenceTrackingEnv().observation_space
    np.testing.assert_array_equal(space.low, [0, 0, -1, 0])
    np.testing.assert_array_equal(space.high, [1, 1, 1, 1])


def test_sequence_tracking_renderings() -> None:
    env = SequenceTrackingEnv(render_mode="ansi")
    env.reset(seed=0)
    env.history = [0.25]
    assert env.render() == "t=  0 [     o    |          ] value=0.25 mean3=0.25\n"
    env.step(1)
    assert env.render() == "t=  1 [       o  |          ] value=0.35 mean3=0.30\n"
    env.history = [1.0]
    assert env.render().startswith("t=  1 [          |         o]")
    rgb = SequenceTrackingEnv(render_mode="rgb_array", episode_length=10)
    rgb.reset(seed=0)
    rgb._drawn.clear()
    rgb._drawn.extend([0.0, 0.5, 1.0, 0.9])
    frame = rgb.render()
    assert frame.shape == (400, 44, 3)
    column_heights = [int(np.all(frame[::4, 4 * c + 1] == (55, 126, 184), axis=1).sum()) for c in range(5)]
    # Bars of 1 + round(99 v) cells: 1, 51, 100 and 90 for 0, 0.5, 1 and 0.9 (the red 0.5 line
    # hides one cell of the last three).
    assert column_heights == [1, 50, 99, 89, 0]
    np.testing.assert_array_equal(frame[200, 2 * 4 + 1], (228, 26, 28))
    assert tuple(frame[399, 1]) == (55, 126, 184)  # a value of 0 still shows its bottom cell
    long = SequenceTrackingEnv(render_mode="rgb_array", episode_length=1000)
    long.reset(seed=0)
    for _ in range(300):
        long.step(1)
    assert long.render().shape == (400, 251 * 4, 3) and len(long._drawn) == 251
