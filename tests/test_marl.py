"""PettingZoo particle environments: PettingZoo's own test suite, exact physics and rewards, agent removal."""

from __future__ import annotations

import functools
import importlib.util
import math
import pickle
import subprocess
import sys
import types
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from gymnasium.utils import seeding
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
)

from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0

MODULES = [cooperative_v0, competitive_v0, mixed_v0]
CONFIGS = [
    pytest.param(
        mod, continuous, n, id=f"{mod.__name__.rsplit('.', 1)[1]}-{'box' if continuous else 'discrete'}-{n}"
    )
    for mod in MODULES
    for continuous in (True, False)
    for n in (2, 3, 5)
]
#: A small, noisy arena from which most agents leave at different times (exercises agent removal).
LEAVING = {"arena_radius": 1.5, "noise_std": 0.2}


# ---------------------------------------------------------------------------- PettingZoo's tests
@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("physics", [{}, LEAVING], ids=["default", "leaving"])
@pytest.mark.parametrize(("mod", "continuous", "n"), CONFIGS)
def test_pettingzoo_api_and_seed(mod, continuous, n, physics) -> None:
    kwargs = {"n_agents": n, "continuous_actions": continuous, **physics}
    api_test(mod.env(max_cycles=20, **kwargs), num_cycles=25)
    parallel_api_test(mod.parallel_env(**kwargs), num_cycles=25)
    seed_test(functools.partial(mod.env, max_cycles=20, **kwargs), num_cycles=25)
    parallel_seed_test(functools.partial(mod.parallel_env, max_cycles=20, **kwargs), num_cycles=25)


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize(("mod", "continuous", "n"), CONFIGS)
def test_pettingzoo_max_cycles_and_render(mod, continuous, n, monkeypatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # "human" mode opens a window
    kwargs = {"n_agents": n, "continuous_actions": continuous}
    module = types.SimpleNamespace(
        env=functools.partial(mod.env, **kwargs), parallel_env=functools.partial(mod.parallel_env, **kwargs)
    )
    max_cycles_test(module)
    render_test(functools.partial(mod.env, **kwargs))


# ---------------------------------------------------------------------------- physics and observations
def test_physics_match_the_update_equations_including_noise() -> None:
    env = cooperative_v0.parallel_env(n_agents=3, noise_std=0.02)
    env.reset(seed=7)
    rng, _ = seeding.np_random(7)
    positions = rng.uniform(-1.0, 1.0, (3, 2))
    velocities = np.zeros((3, 2))
    for actions in ([[1.0, 0.0], [0.0, -1.0], [0.5, 0.5]], [[-1.0, 1.0], [3.0, -3.0], [0.0, 0.0]]):
        obs, *_ = env.step({f"agent_{i}": np.array(a) for i, a in enumerate(actions)})
        clipped = np.clip(actions, -1.0, 1.0)  # out-of-range actions are clipped
        velocities = 0.9 * (velocities + 0.1 * clipped)
        positions = positions + 0.1 * velocities + rng.normal(0.0, 0.02, (3, 2))
        np.testing.assert_allclose(env.unwrapped.world.positions, positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(obs["agent_1"][2:4], velocities[1], rtol=1e-6)


def test_discrete_actions_are_unit_accelerations_in_mpe_order() -> None:
    env = competitive_v0.parallel_env(n_agents=5, continuous_actions=False, noise_std=0.0)
    env.reset(seed=0)
    env.unwrapped.world.set_state(np.zeros((5, 2)))
    env.step({f"agent_{i}": i for i in range(5)})  # no-op, -x, +x, -y, +y
    expected = 0.09 * np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
    np.testing.assert_allclose(env.unwrapped.world.velocities, expected, atol=1e-15)
    np.testing.assert_allclose(env.unwrapped.world.positions, 0.1 * expected, atol=1e-15)


def test_observation_layout_on_hand_built_positions() -> None:
    env = mixed_v0.parallel_env(n_agents=5, noise_std=0.0)
    env.reset(seed=0)
    positions = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [3.0, 0.5], [0.0, 0.0]])
    velocities = np.full((5, 2), 0.1)
    env.unwrapped.world.set_state(positions, velocities)
    obs = env.unwrapped.world.observations()
    assert env.possible_agents == ["red_0", "red_1", "red_2", "blue_0", "blue_1"]
    # red_1: position, velocity, team 0, team-mates red_0, red_2, then opponents blue_0, blue_1.
    expected = [0, 2, 0.1, 0.1, 0, 1, -2, -1, -3, 3, -1.5, 0, -2]
    np.testing.assert_allclose(obs[1], expected, rtol=1e-6)
    # blue_1: team 1, team-mate blue_0 first.
    np.testing.assert_allclose(obs[4][4:], [1, 3, 0.5, 1, 0, 0, 2, -1, -1], rtol=1e-6)
    coop = cooperative_v0.parallel_env(n_agents=3)
    coop.reset(seed=0)
    coop.unwrapped.world.set_state(positions[:3])
    np.testing.assert_allclose(coop.unwrapped.world.observations()[2], [-1, -1, 0, 0, 2, 1, 1, 3], rtol=1e-6)
    assert coop.observation_space("agent_0").shape == (8,)
    assert env.observation_space("red_0").shape == (13,)


def test_aec_and_parallel_apis_produce_identical_episodes() -> None:
    kwargs = {"n_agents": 4, **LEAVING}
    aec, par = mixed_v0.env(**kwargs), mixed_v0.parallel_env(**kwargs)
    aec.reset(seed=3)
    observations, _ = par.reset(seed=3)
    rng = np.random.default_rng(0)
    removed = 0
    while par.agents:
        actions = {a: rng.uniform(-1, 1, 2) for a in par.agents}
        for agent in par.agents:
            np.testing.assert_array_equal(aec.observe(agent), observations[agent])
        observations, rewards, terminations, truncations, _ = par.step(actions)
        for agent in actions:  # one AEC cycle: every live agent acts in turn
            assert aec.agent_selection == agent
            aec.step(actions[agent])
        for agent in actions:
            assert aec.rewards[agent] == rewards[agent]
            assert aec.terminations[agent] == terminations[agent]
            assert aec.truncations[agent] == truncations[agent]
        while aec.agents and (aec.terminations[aec.agent_selection] or aec.truncations[aec.agent_selection]):
            aec.step(None)
            removed += 1
        assert aec.agents == par.agents
    assert removed == 4


# ---------------------------------------------------------------------------- rewards
def test_cooperative_reward_is_the_shared_team_formula() -> None:
    positions = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -1.0]])
    d01, d02, d12 = 5.0, math.sqrt(34.0), 1.0
    per_agent = [-5 - 0.05 * (d01 + d02), -0 - 0.05 * (d01 + d12), -1 - 0.05 * (d02 + d12)]
    np.testing.assert_allclose(cooperative_v0.rewards(positions), [np.mean(per_agent)] * 3, rtol=1e-12)
    # Agent 0 out of play: it neither receives nor counts in the team reward.
    team = np.mean([-0.05 * d12, -1 - 0.05 * d12])
    np.testing.assert_allclose(
        cooperative_v0.rewards(positions, [False, True, True]), [0, team, team], rtol=1e-12
    )
    # Through the environment (no noise, agents at rest, zero actions: nothing moves).
    env = cooperative_v0.parallel_env(n_agents=3, noise_std=0.0)
    env.reset(seed=0)
    env.unwrapped.world.set_state(positions)
    _, rewards, *_ = env.step({a: np.zeros(2) for a in env.agents})
    assert rewards == pytest.approx(dict.fromkeys(env.possible_agents, np.mean(per_agent)), rel=1e-12)


def test_competitive_reward_nearest_wins_and_ties_split() -> None:
    positions = np.array([[0.5, 0.0], [0.0, -1.0], [2.0, 2.0]])
    np.testing.assert_array_equal(competitive_v0.rewards(positions), [1.0, -0.1, -0.1])
    tie = np.array([[1.0, 0.0], [0.0, -1.0], [2.0, 2.0], [-1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(competitive_v0.rewards(tie), [1 / 3, 1 / 3, -0.1, 1 / 3, -0.1], rtol=1e-12)
    np.testing.assert_allclose(competitive_v0.rewards(tie[:2]), [0.5, 0.5], rtol=1e-12)
    # An agent out of play cannot win, and gets nothing.
    np.testing.assert_allclose(competitive_v0.rewards(positions, [False, True, True]), [0.0, 1.0, -0.1])
    env = competitive_v0.parallel_env(n_agents=5, noise_std=0.0)
    env.reset(seed=0)
    env.unwrapped.world.set_state(tie)
    _, rewards, *_ = env.step({a: np.zeros(2) for a in env.agents})
    assert list(rewards.values()) == pytest.approx([1 / 3, 1 / 3, -0.1, 1 / 3, -0.1], rel=1e-12)


@pytest.mark.parametrize(("n", "red", "blue"), [(2, 1, 1), (3, 2, 1), (5, 3, 2), (6, 3, 3)])
def test_mixed_team_sizes_are_ceil_and_floor(n, red, blue) -> None:
    env = mixed_v0.parallel_env(n_agents=n)
    assert env.possible_agents == [f"red_{i}" for i in range(red)] + [f"blue_{i}" for i in range(blue)]
    np.testing.assert_array_equal(mixed_v0.teams(n), [0] * red + [1] * blue)
    obs, _ = env.reset(seed=0)
    assert [obs[a][4] for a in env.possible_agents] == [0.0] * red + [1.0] * blue


def test_mixed_reward_team_resource_ties_and_cohesion() -> None:
    # red_0, red_1, red_2 | blue_0, blue_1; blue_0 is nearest to the origin.
    positions = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.5, 0.0], [0.0, -2.0]])
    red_cohesion = [
        0.05 * (math.sqrt(5) + 2),
        0.05 * (math.sqrt(5) + math.sqrt(13)),
        0.05 * (2 + math.sqrt(13)),
    ]
    blue_cohesion = [0.05 * math.sqrt(4.25)] * 2
    expected = [-0.1 - c for c in red_cohesion] + [1.0 - c for c in blue_cohesion]
    np.testing.assert_allclose(mixed_v0.rewards(positions), expected, rtol=1e-12)
    # Tie between red_0 and blue_0 (both at distance 1): each team gets half of +1 and half of -0.1.
    tie = positions.copy()
    tie[3] = [0.0, 1.0]
    split = 0.5 * 1.0 + 0.5 * -0.1
    blue_tie_cohesion = 0.05 * 3.0
    np.testing.assert_allclose(
        mixed_v0.rewards(tie), [split - c for c in red_cohesion] + [split - blue_tie_cohesion] * 2, rtol=1e-12
    )
    # Two red agents and one blue tied: red gets 2/3 of the resource, blue 1/3.
    three = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    red_c = 0.05 * math.sqrt(2)
    np.testing.assert_allclose(
        mixed_v0.rewards(three),
        [2 / 3 - 0.1 / 3 - red_c, 2 / 3 - 0.1 / 3 - red_c, 1 / 3 - 0.2 / 3],
        rtol=1e-12,
    )
    # Out-of-play agents neither win nor count for cohesion: blue_0 out, red_0 now nearest.
    in_play = [True, True, True, False, True]
    got = mixed_v0.rewards(positions, in_play)
    np.testing.assert_allclose(got[:3], [1.0 - c for c in red_cohesion], rtol=1e-12)
    np.testing.assert_allclose(got[3:], [0.0, -0.1], rtol=1e-12)


@pytest.mark.parametrize("mod", MODULES)
def test_rewards_are_batched(mod) -> None:
    positions = np.random.default_rng(1).uniform(-2, 2, (4, 6, 5, 2))
    in_play = np.random.default_rng(2).random((4, 6, 5)) < 0.8
    batched = mod.rewards(positions, in_play)
    assert batched.shape == (4, 6, 5)
    np.testing.assert_allclose(batched[2, 3], mod.rewards(positions[2, 3], in_play[2, 3]), rtol=1e-12)


# ---------------------------------------------------------------------------- leaving the arena
def leaving_env(api: str):
    """3 agents, no noise; agent_1 is about to cross the arena's edge moving outwards."""
    make = cooperative_v0.parallel_env if api == "parallel" else cooperative_v0.env
    env = make(n_agents=3, noise_std=0.0, max_cycles=10)
    env.reset(seed=0)
    env.unwrapped.world.set_state([[0.0, 0.0], [4.95, 0.0], [0.0, 1.0]], [[0, 0], [0.9, 0], [0, 0]])
    return env


def test_parallel_terminated_agent_leaves_and_never_acts_again() -> None:
    env = leaving_env("parallel")
    actions = {"agent_0": np.zeros(2), "agent_1": np.array([1.0, 0.0]), "agent_2": np.zeros(2)}
    obs, rewards, terminations, truncations, _ = env.step(actions)
    assert terminations == {"agent_0": False, "agent_1": True, "agent_2": False}
    assert not any(truncations.values())
    assert set(obs) == set(rewards) == {"agent_0", "agent_1", "agent_2"}  # its last transition
    assert env.agents == ["agent_0", "agent_2"]
    exit_position = env.unwrapped.world.positions[1].copy()
    assert exit_position[0] == pytest.approx(4.95 + 0.09)
    with pytest.raises(ValueError, match="'agent_1'.*done"):
        env.step(actions)
    for _ in range(3):
        obs, rewards, terminations, *_ = env.step({"agent_0": np.ones(2), "agent_2": np.ones(2)})
        assert set(obs) == set(rewards) == set(terminations) == {"agent_0", "agent_2"}
    # Frozen where it left and still seen there; the team reward ignores it.
    np.testing.assert_array_equal(env.unwrapped.world.positions[1], exit_position)
    world = env.unwrapped.world
    np.testing.assert_allclose(obs["agent_0"][4:6], world.positions[1] - world.positions[0], rtol=1e-6)
    assert rewards["agent_0"] == pytest.approx(
        cooperative_v0.rewards(world.positions, [True, False, True])[0]
    )
    while env.agents:
        _, _, _, truncations, _ = env.step(dict.fromkeys(env.agents, np.zeros(2)))
    assert env.unwrapped.num_cycles == 10 and all(truncations.values())
    assert env.step({}) == ({}, {}, {}, {}, {})  # what SuperSuit's black_death_v3 does after the end


@pytest.mark.parametrize(
    "mod", [cooperative_v0, competitive_v0, mixed_v0], ids=lambda mod: mod.__name__.split(".")[-1]
)
@pytest.mark.parametrize("api", ["parallel", "aec"])
def test_exit_step_rewards_still_count_the_leaving_agent(mod, api: str) -> None:
    """On the step an agent leaves the arena it was in play: every reward of that step, its own
    included, is computed with it in play (as it stood after the move); from the next step on it
    no longer counts."""
    env = (
        mod.parallel_env(n_agents=3, noise_std=0.0, max_cycles=10)
        if api == "parallel"
        else mod.env(n_agents=3, noise_std=0.0, max_cycles=10)
    )
    env.reset(seed=0)
    world = env.unwrapped.world
    world.set_state([[0.0, 0.0], [4.95, 0.0], [0.0, 1.0]], [[0, 0], [0.9, 0], [0, 0]])
    names = env.possible_agents  # in the world's order: the second one leaves
    actions = dict(zip(names, [np.zeros(2), np.array([1.0, 0.0]), np.zeros(2)], strict=True))
    if api == "parallel":
        _, rewards, terminations, *_ = env.step(actions)
    else:
        for agent in names:
            env.step(actions[agent])
        rewards, terminations = dict(env.rewards), dict(env.terminations)
    assert [terminations[agent] for agent in names] == [False, True, False]
    expected = mod.rewards(world.positions, np.ones(3, dtype=bool))
    after_exit = mod.rewards(world.positions, np.array([True, False, True]))
    assert np.abs(expected - after_exit).max() > 0.01  # the flags make a difference here
    np.testing.assert_allclose([rewards[agent] for agent in names], expected, rtol=1e-12)


def test_aec_terminated_agent_steps_none_then_is_never_selected() -> None:
    env = leaving_env("aec")
    for agent, action in (
        ("agent_0", np.zeros(2)),
        ("agent_1", np.array([1.0, 0.0])),
        ("agent_2", np.zeros(2)),
    ):
        assert env.agent_selection == agent
        env.step(action)
    assert env.agent_selection == "agent_1"  # done agents step first
    _, reward, terminated, truncated, _ = env.last()
    assert terminated and not truncated and reward == env.rewards["agent_1"]
    with pytest.raises(ValueError, match="'agent_1'.*only valid action is None"):
        env.step(np.zeros(2))
    env.step(None)
    assert env.agents == ["agent_0", "agent_2"] and "agent_1" not in env.rewards
    selected = []
    for agent in env.agent_iter():
        selected.append(agent)
        _, _, terminated, truncated, _ = env.last()
        env.step(None if terminated or truncated else np.zeros(2))
    assert "agent_1" not in selected and selected.count("agent_0") == 10  # 9 cycles + the truncation step
    assert env.agents == []


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("continuous", "bad", "match"),
    [
        (True, np.zeros(3), "shape"),
        (True, np.array([np.nan, 0.0]), "finite"),
        (True, np.array([0.0, np.inf]), "finite"),
        (True, "left", "numeric"),
        (False, 5, r"\[0, 4\]"),
        (False, -1, r"\[0, 4\]"),
        (False, 1.5, "integer"),
        (False, np.array([1, 2]), "single integer"),
    ],
)
def test_bad_actions_raise_value_error_naming_the_agent(continuous, bad, match) -> None:
    par = mixed_v0.parallel_env(n_agents=3, continuous_actions=continuous)
    par.reset(seed=0)
    good = par.action_space("red_0").sample()
    with pytest.raises(ValueError, match=f"'red_1'.*{match}"):
        par.step({"red_0": good, "red_1": bad, "blue_0": good})
    aec = mixed_v0.env(n_agents=3, continuous_actions=continuous)
    aec.reset(seed=0)
    aec.step(good)
    with pytest.raises(ValueError, match=f"'red_1'.*{match}"):
        aec.step(bad)


def test_unknown_and_missing_agents_raise_value_error() -> None:
    env = competitive_v0.parallel_env(n_agents=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="'agent_7'.*unknown"):
        env.step({"agent_0": np.zeros(2), "agent_1": np.zeros(2), "agent_7": np.zeros(2)})
    with pytest.raises(ValueError, match="missing action for agent 'agent_1'"):
        env.step({"agent_0": np.zeros(2)})
    with pytest.raises(ValueError, match="'nobody'"):
        env.observation_space("nobody")
    # Finite out-of-range actions are clipped, as for every Box action in gym_advrl.
    env.step({"agent_0": np.array([5.0, -5.0]), "agent_1": np.zeros(2)})
    np.testing.assert_allclose(env.unwrapped.world.velocities[0], [0.09, -0.09])


@pytest.mark.parametrize(
    ("mod", "kwargs", "name"),
    [
        (competitive_v0, {"n_agents": 1}, "n_agents"),
        (mixed_v0, {"n_agents": 2.5}, "n_agents"),
        (cooperative_v0, {"continuous_actions": "yes"}, "continuous_actions"),
        (cooperative_v0, {"max_cycles": 0}, "max_cycles"),
        (cooperative_v0, {"arena_radius": 1.0}, "arena_radius"),
        (cooperative_v0, {"noise_std": -0.1}, "noise_std"),
        (cooperative_v0, {"render_mode": "ansi"}, "render_mode"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(mod, kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        mod.parallel_env(**kwargs)
    with pytest.raises(ValueError, match=name):
        mod.env(**kwargs)


# ---------------------------------------------------------------------------- pickling, state, rendering, import
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_envs_pickle_with_their_arguments(dumps) -> None:
    env = mixed_v0.parallel_env(n_agents=5, continuous_actions=False, max_cycles=7)
    clone = pickle.loads(dumps(env))
    assert (
        clone.possible_agents == env.possible_agents
        and clone.max_cycles == 7
        and not clone.continuous_actions
    )
    first, _ = env.reset(seed=4)
    again, _ = clone.reset(seed=4)
    assert all(np.array_equal(first[a], again[a]) for a in env.agents)
    raw = pickle.loads(dumps(competitive_v0.raw_env(n_agents=4)))
    assert raw.metadata["name"] == "competitive_v0" and raw.max_num_agents == 4


def test_state_is_the_global_state() -> None:
    env = cooperative_v0.parallel_env(n_agents=3, noise_std=0.0)
    env.reset(seed=0)
    env.unwrapped.world.set_state([[1.0, 2.0], [0.0, 0.0], [-1.0, 0.5]], [[0.1, 0.0], [0, 0], [0, -0.2]])
    state = env.state()
    assert env.state_space.contains(state)
    np.testing.assert_allclose(state, [1, 2, 0, 0, -1, 0.5, 0.1, 0, 0, 0, 0, -0.2, 1, 1, 1], rtol=1e-6)


def test_rgb_frames_show_agents_in_team_colours() -> None:
    env = mixed_v0.parallel_env(n_agents=2, render_mode="rgb_array", noise_std=0.0)
    env.reset(seed=0)
    env.unwrapped.world.set_state([[2.0, 0.0], [-2.0, 0.0]])
    frame = env.render()
    assert frame.shape == (400, 400, 3) and frame.dtype == np.uint8
    # 400 px over [-5.5, 5.5]: x = 2 is column 272, x = -2 column 127, y = 0 row 200.
    assert tuple(frame[200, 272]) == (210, 60, 60) and tuple(frame[200, 127]) == (50, 90, 210)
    env.unwrapped.world.in_play[1] = False
    assert tuple(env.render()[200, 127]) == (150, 150, 150)  # out of play: grey


def test_importing_the_marl_envs_does_not_import_torch() -> None:
    code = (
        "import sys, gym_advrl, gym_advrl.marl;"
        "from gym_advrl.marl import cooperative_v0, competitive_v0, mixed_v0;"
        "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- SuperSuit + PPO example
def test_parameter_sharing_example_trains_and_evaluates() -> None:
    pytest.importorskip("supersuit")
    path = Path(__file__).resolve().parents[1] / "examples" / "marl_ppo_parameter_sharing.py"
    spec = importlib.util.spec_from_file_location("marl_ppo_parameter_sharing", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    # 2 copies x 3 agents x 32 steps = one PPO update of 192 samples on 20-step episodes, which also
    # crosses SuperSuit's end-of-episode path several times.
    result = example.main(
        ["--timesteps", "192", "--n-envs", "2", "--n-steps", "32", "--batch-size", "64",
         "--max-cycles", "20", "--eval-episodes", "2", "--discrete"]
    )  # fmt: skip
    assert set(result) == {"ppo", "random", "train_seconds"}
    # Team returns of 20 steps of a cooperative reward that is at most 0 and at least -30 per step.
    assert -600 < result["ppo"] <= 0 and -600 < result["random"] <= 0


def test_teams_name_every_agent_team() -> None:
    from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0

    assert mixed_v0.parallel_env(n_agents=5).teams == {
        "red_0": "red",
        "red_1": "red",
        "red_2": "red",
        "blue_0": "blue",
        "blue_1": "blue",
    }
    assert set(cooperative_v0.parallel_env(n_agents=3).teams.values()) == {"agent"}
    assert mixed_v0.env(n_agents=2).unwrapped.teams == {"red_0": "red", "blue_0": "blue"}
    assert competitive_v0.parallel_env(n_agents=2).teams == {"agent_0": "agent", "agent_1": "agent"}
