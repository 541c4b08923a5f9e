"""Property-based fuzzing of every env, wrapper and MARL env: generated arguments, reset options and actions.

Each call either works (finite observations inside the observation space, finite rewards,
valid frames) or raises ``ValueError`` whose message names the offending argument, reset
option or action. Values mix the valid domain, its boundaries and adversarial junk (NaN, inf,
huge and tiny numbers, strings, booleans, complex numbers, wrong shapes, unknown keys).

Bounded by the hypothesis profile of ``tests/conftest.py`` (100 examples per test by default);
``pytest --hypothesis-profile=long tests/test_fuzz.py`` runs 2,000 per test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from hypothesis import given
from hypothesis import strategies as st

from gym_advrl.envs.grid_world import DYNA_MAZE
from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0
from gym_advrl.wrappers import (
    Curriculum,
    DomainRandomization,
    GoalSchedule,
    MaskObservation,
    ObservationNoise,
    RandomShift,
)
from tests.conftest import ADVRL_IDS

N_STEPS = 20

# ---------------------------------------------------------------------------- value strategies
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(),  # NaN, inf, huge, tiny
    st.integers(),
    st.sampled_from(
        [1e300, -1e300, 1e-300, 10**400, -(10**400), float("inf"), float("nan"), 1 + 1j, b"1", "0.5"]
    ),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def maybe_junk(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly values from ``valid``, sometimes junk."""
    return st.one_of(valid, valid, valid, JUNK)


def number(low: float, high: float) -> st.SearchStrategy:
    """Numbers around ``[low, high]``: inside, on the bounds, just outside, and extreme."""
    edges = [low, high, low - abs(low) * 1e-3 - 1e-9, high * 1.001 + 1e-9, 0.0, -1.0, 1e-300, 1e300]
    return st.one_of(st.floats(low, high), st.floats(low, high), st.sampled_from(edges), st.integers(-3, 3))


def cells(limit: int = 12) -> st.SearchStrategy:
    coordinate = st.one_of(
        st.integers(-1, limit), st.floats(allow_nan=True), st.sampled_from([1.0, 2.5, 10**400])
    )
    return st.one_of(
        st.tuples(coordinate, coordinate), st.tuples(st.integers(0, limit), st.integers(0, limit))
    )


def physics_dicts(ranges: dict[str, tuple[float, float]]) -> st.SearchStrategy:
    keys = {name: maybe_junk(number(*bounds)) for name, bounds in ranges.items()}
    return st.one_of(
        st.fixed_dictionaries({}, optional=keys),
        st.fixed_dictionaries({}, optional={"mass": st.just(1.0)}),
        JUNK,
    )


PENDULUM_PHYSICS = {
    "g": (0.0, 1e3),
    "m": (1e-3, 1e3),
    "l": (1e-3, 1e3),
    "damping": (0.0, 1e3),
    "max_torque": (0.0, 1e3),
}
CARTPOLE_PHYSICS = {
    "gravity": (0.0, 1e3), "masscart": (1e-3, 1e3), "masspole": (1e-3, 1e3), "length": (1e-3, 1e3), "force_mag": (0.0, 1e3),
}  # fmt: skip
VARIABLES = ["X1", "X2", "X3", "X4"]


@st.composite
def mapping_graphs(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 4))
    graph: dict[str, dict[str, Any]] = {}
    for j in range(n):
        parents = draw(st.lists(st.sampled_from(VARIABLES[:j] + ["a"]), unique=True, max_size=j + 1))
        graph[VARIABLES[j]] = {p: draw(maybe_junk(number(-1e3, 1e3))) for p in parents}
    return graph


CONSTRUCTOR_ARGS: dict[str, dict[str, st.SearchStrategy]] = {
    "AdvRL/Pendulum-v0": {**{k: number(*v) for k, v in PENDULUM_PHYSICS.items()}, "max_speed": number(0.0, 1e3),
                          "dt": number(0.0, 1.0)},
    "AdvRL/ContinuousCartPole-v0": {**{k: number(*v) for k, v in CARTPOLE_PHYSICS.items()}, "tau": number(0.0, 0.1)},
    "AdvRL/GridWorld-v0": {
        "size": st.one_of(st.integers(2, 12), st.tuples(st.integers(2, 12), st.integers(2, 12)), st.integers(-2, 2000)),
        "start": st.one_of(st.none(), cells()),
        "goal": cells(),
        "walls": st.lists(cells(), max_size=6),
        "slip": number(0.0, 1.0),
        "layout": st.sampled_from([None, DYNA_MAZE, "S.G", "#.X\n...", "S#\n#G", "", "SG", "...\n.S.\n..."]),
        "obs_mode": st.sampled_from(["coords", "index", "rgb", "pixels"]),
        "cell_px": st.integers(-1, 80),
        "step_reward": number(-1e6, 1e6),
        "goal_reward": number(-1e6, 1e6),
    },
    "AdvRL/FourRooms-v0": {
        "goal": cells(13), "slip": number(0.0, 1.0), "obs_mode": st.sampled_from(["coords", "index", "rgb"]),
        "cell_px": st.integers(0, 70),
    },
    "AdvRL/GoalGridWorld-v0": {
        "size": st.one_of(st.integers(2, 12), st.tuples(st.integers(2, 12), st.integers(2, 12)), st.integers(-2, 2000)),
        "start": st.one_of(st.none(), cells()),
        "goal": st.one_of(st.none(), cells()),
        "walls": st.lists(cells(), max_size=6),
        "slip": number(0.0, 1.0),
        "layout": st.sampled_from([None, DYNA_MAZE, "S.G", "#.X\n...", "S#\n#G", "", "SG", "...\n.S.\n..."]),
        "reward_type": st.sampled_from(["sparse", "dense", "shaped"]),
        "cell_px": st.integers(-1, 80),
    },
    "AdvRL/GoalFourRooms-v0": {
        "start": st.one_of(st.none(), cells(13)), "goal": st.one_of(st.none(), cells(13)), "slip": number(0.0, 1.0),
        "reward_type": st.sampled_from(["sparse", "dense", "shaped"]), "cell_px": st.integers(0, 70),
    },
    "AdvRL/GoalPointMass-v0": {
        "distance_threshold": number(0.0, 1.0), "reward_type": st.sampled_from(["sparse", "dense", "shaped"]),
    },
    "AdvRL/SequenceMemory-v0": {"n_symbols": st.integers(0, 10), "delay": st.integers(-1, 1000), "distractors": st.booleans()},
    "AdvRL/SequenceTracking-v0": {"episode_length": st.integers(0, 10**7)},
    "AdvRL/NonlinearRegulator-v0": {"process_noise": number(0.0, 10.0)},
    "AdvRL/QuantumGate-v0": {
        "n_qubits": st.integers(0, 11),
        "target": st.one_of(st.sampled_from([None, "bell", "ghz", "plus", "random", "w"]),
                            st.lists(st.complex_numbers(max_magnitude=1, allow_nan=False), min_size=1, max_size=8)),
        "gates": st.one_of(st.none(), st.lists(st.sampled_from(["h", "x", "cx", "rz", "swap", "cz", "toffoli", "H"]),
                                               max_size=4)),
        "threshold": number(0.0, 1.0),
        "noise_prob": number(0.0, 1.0),
        "target_depth": st.integers(0, 21),
        "rotation_angle": st.floats(-10, 10),
    },
    "AdvRL/CausalSCM-v0": {
        "action_type": st.sampled_from(["additive", "do", "multiply"]),
        "graph": st.one_of(st.sampled_from(["seed", "random", "circle"]), mapping_graphs()),
        "n_vars": st.integers(0, 60),
        "edge_prob": number(0.0, 1.0),
        "graph_seed": st.integers(-1, 2**32),
        "noise_std": st.one_of(st.none(), number(0.0, 1e3)),
        "confounded": st.booleans(),
        "confounder_strength": number(0.0, 1e3),
        "outcome": st.sampled_from([None, "X1", "X2", "X3", "X9"]),
        "target": number(-1e6, 1e6),
        "intervenable": st.one_of(st.none(), st.lists(st.sampled_from(VARIABLES + ["Y"]), max_size=3)),
        "levels": st.lists(number(-1e6, 1e6), max_size=4),
    },
}  # fmt: skip
RESET_OPTIONS: dict[str, dict[str, st.SearchStrategy]] = {
    "AdvRL/Pendulum-v0": {"physics": physics_dicts(PENDULUM_PHYSICS), "x_init": number(0.0, math.pi),
                          "y_init": number(0.0, 8.0)},
    "AdvRL/ContinuousCartPole-v0": {"physics": physics_dicts(CARTPOLE_PHYSICS), "low": number(-0.2, 0.2),
                                    "high": number(-0.2, 0.2)},
    "AdvRL/GridWorld-v0": {"goal": cells()},
    "AdvRL/FourRooms-v0": {"goal": cells(13)},
    "AdvRL/GoalGridWorld-v0": {"goal": cells()},
    "AdvRL/GoalFourRooms-v0": {"goal": cells(13)},
    "AdvRL/GoalPointMass-v0": {"goal": st.tuples(number(-1.0, 1.0), number(-1.0, 1.0))},
}  # fmt: skip


def constructor_kwargs(arguments: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    optional = {name: maybe_junk(strategy) for name, strategy in arguments.items()}
    optional["render_mode"] = st.sampled_from([None, None, "rgb_array", "ansi", "video"])
    optional["bogus_argument"] = st.integers()  # an unknown keyword, now and then
    return st.fixed_dictionaries({}, optional=optional)


def reset_options(valid: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    keys = {name: maybe_junk(strategy) for name, strategy in valid.items()}
    keys["bogus"] = st.integers()
    return st.one_of(
        st.none(), st.fixed_dictionaries({}, optional=keys), st.fixed_dictionaries({}, optional=keys), JUNK
    )


def actions(space: spaces.Space) -> st.SearchStrategy:
    if isinstance(space, spaces.Discrete):
        valid = st.integers(int(space.start), int(space.start + space.n - 1))
        return st.one_of(valid, valid, st.integers(-2, int(space.n) + 2), st.floats(-1, space.n + 1), JUNK)
    low, high = float(space.low.min()), float(space.high.max())
    size = int(np.prod(space.shape))
    inside = st.lists(st.floats(low, high), min_size=size, max_size=size)
    outside = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=size, max_size=size)
    arrays = st.one_of(inside, inside, inside, outside).map(lambda v: np.array(v).reshape(space.shape))
    wrong_shape = st.lists(st.floats(-1, 1), min_size=size + 1, max_size=size + 2).map(np.array)
    return st.one_of(arrays, arrays, arrays, wrong_shape, JUNK)


# ---------------------------------------------------------------------------- checks
def assert_names_one_of(err: ValueError, names: Iterable[str]) -> None:
    names = {str(name) for name in names}
    assert any(name in str(err) for name in names), f"{str(err)!r} names none of {sorted(names)}"


def option_names(options: Any) -> set[str]:
    names = {"options"}
    if isinstance(options, dict):
        names |= {str(key) for key in options}
        physics = options.get("physics")
        if isinstance(physics, dict):
            names |= {str(key) for key in physics}
    return names


def assert_valid_obs(space: spaces.Space, obs: Any) -> None:
    assert space.contains(obs), f"{obs!r} outside {space}"
    if isinstance(obs, np.ndarray) and obs.dtype.kind == "f":
        assert np.all(np.isfinite(obs))


def assert_valid_frame(env: gym.Env) -> None:
    frame = env.render()
    if env.render_mode == "ansi":
        assert isinstance(frame, str) and frame
    else:
        assert (
            frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.nbytes < 64 * 2**20
        )


def drive(env: gym.Env, data: st.DataObject, names: set[str], options: st.SearchStrategy) -> None:
    """Reset with generated options, step with generated actions; every outcome is valid or a named ValueError."""
    chosen = data.draw(options, label="options")
    try:
        obs, _ = env.reset(seed=data.draw(st.integers(0, 2**32 - 1), label="seed"), options=chosen)
    except ValueError as err:
        assert_names_one_of(err, names | option_names(chosen))
        try:
            obs, _ = env.reset(seed=0)
        except ValueError as err:  # a combination of constructor arguments that cannot start an episode
            assert_names_one_of(err, names)
            return
    assert_valid_obs(env.observation_space, obs)
    action_strategy = actions(env.action_space)
    for _ in range(N_STEPS):
        action = data.draw(action_strategy, label="action")
        try:
            obs, reward, terminated, truncated, _ = env.step(action)
        except ValueError as err:
            assert_names_one_of(err, {"action"})
            continue
        assert_valid_obs(env.observation_space, obs)
        assert isinstance(reward, float | int | np.floating) and math.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()
            assert_valid_obs(env.observation_space, obs)
    if env.render_mode in ("rgb_array", "ansi"):
        assert_valid_frame(env)


# ---------------------------------------------------------------------------- envs
@pytest.mark.parametrize("env_id", ADVRL_IDS)
@given(data=st.data())
def test_env_arguments_options_and_actions(env_id: str, data: st.DataObject) -> None:
    kwargs = data.draw(constructor_kwargs(CONSTRUCTOR_ARGS.get(env_id, {})), label="kwargs")
    try:
        env = load_env_creator(gym.spec(env_id).entry_point)(**kwargs)
    except ValueError as err:
        assert_names_one_of(err, kwargs)
        return
    drive(env, data, set(kwargs), reset_options(RESET_OPTIONS.get(env_id, {})))


def test_every_registered_env_is_fuzzed_with_its_arguments() -> None:
    assert set(CONSTRUCTOR_ARGS) == set(ADVRL_IDS)


# ---------------------------------------------------------------------------- wrappers
def ranges() -> st.SearchStrategy:
    value = st.one_of(st.tuples(number(0.0, 1e3), number(0.0, 1e3)), number(0.0, 1e3), JUNK)
    keys = st.sampled_from(list(PENDULUM_PHYSICS) + list(CARTPOLE_PHYSICS) + ["mass"])
    return st.one_of(st.dictionaries(keys, value, max_size=3), JUNK)


#: name -> (wrapper, envs to wrap, argument strategies, required arguments).
WRAPPERS = {
    "DomainRandomization": (
        DomainRandomization,
        ["AdvRL/Pendulum-v0", "AdvRL/ContinuousCartPole-v0", "AdvRL/GridWorld-v0"],
        {"ranges": ranges(), "distribution": st.sampled_from(["uniform", "log-uniform", "normal"])},
        ("ranges",),
    ),
    "Curriculum": (
        Curriculum,
        ["AdvRL/GridWorld-v0", "AdvRL/Pendulum-v0", "AdvRL/NonlinearRegulator-v0"],
        {
            "levels": st.one_of(
                st.lists(reset_options({**RESET_OPTIONS["AdvRL/GridWorld-v0"], **RESET_OPTIONS["AdvRL/Pendulum-v0"]}),
                         min_size=1, max_size=3),
                JUNK,
            ),
            "success_threshold": st.one_of(st.none(), number(-1e3, 1e3)),
            "promote_threshold": number(0.0, 1.0),
            "demote_threshold": number(0.0, 1.0),
            "window": st.integers(-1, 5),
            "start_level": st.integers(-1, 3),
        },
        ("levels",),
    ),
    "GoalSchedule": (
        GoalSchedule,
        ["AdvRL/GridWorld-v0", "AdvRL/FourRooms-v0", "AdvRL/Pendulum-v0"],
        {"goals": st.one_of(st.lists(cells(13), max_size=3), JUNK), "switch_every": st.one_of(st.none(), st.integers(-1, 3)),
         "order": st.sampled_from(["sequential", "cycle", "random", "shuffle"])},
        ("goals",),
    ),
    "ObservationNoise": (
        ObservationNoise,
        ["AdvRL/Pendulum-v0", "AdvRL/ContinuousCartPole-v0", "AdvRL/NonlinearRegulator-v0", "AdvRL/FourRooms-v0"],
        {"std": st.one_of(number(0.0, 1e6), st.lists(number(0.0, 1e6), max_size=5))},
        (),
    ),
    "RandomShift": (RandomShift, ["AdvRL/GridWorld-v0", "AdvRL/Pendulum-v0"], {"pad": st.integers(-1, 50)}, ()),
    "MaskObservation": (
        MaskObservation,
        ["AdvRL/Pendulum-v0", "AdvRL/ContinuousCartPole-v0", "AdvRL/GridWorld-v0"],
        {"drop": st.one_of(st.none(), st.lists(st.integers(-6, 6), max_size=4)),
         "keep": st.one_of(st.none(), st.lists(st.integers(-6, 6), max_size=4))},
        (),
    ),
}  # fmt: skip


@pytest.mark.parametrize("wrapper_name", WRAPPERS)
@given(data=st.data())
def test_wrapper_arguments_options_and_actions(wrapper_name: str, data: st.DataObject) -> None:
    wrapper, env_ids, arguments, required = WRAPPERS[wrapper_name]
    env_id = data.draw(st.sampled_from(env_ids), label="env_id")
    env_kwargs = {"obs_mode": "rgb"} if env_id == "AdvRL/GridWorld-v0" and wrapper is RandomShift else {}
    strategies = {name: maybe_junk(strategy) for name, strategy in arguments.items()}
    kwargs = data.draw(
        st.fixed_dictionaries(
            {name: strategies.pop(name) for name in required},
            optional={**strategies, "bogus_argument": st.integers()},
        ),
        label="kwargs",
    )
    # Without Gymnasium's PassiveEnvChecker: after a first reset that raises, its next step fails
    # with a TypeError of its own (gymnasium 1.4: the reset data it compares against is None).
    env = gym.make(env_id, disable_env_checker=True, **env_kwargs)
    try:
        wrapped = wrapper(env, **kwargs)
    except ValueError as err:  # an omitted argument may be the wrong one; the env is named by its id
        assert_names_one_of(err, set(kwargs) | set(arguments) | {"env", env_id})
        return
    drive(wrapped, data, set(kwargs), reset_options(RESET_OPTIONS.get(env_id, {})))


# ---------------------------------------------------------------------------- MARL
MARL_ARGS = {
    "n_agents": st.integers(-1, 110),
    "continuous_actions": st.booleans(),
    "max_cycles": st.integers(-1, 30),
    "noise_std": number(0.0, 100.0),
    "arena_radius": number(math.sqrt(2.0), 1e4),
    "render_mode": st.sampled_from([None, "rgb_array", "ansi"]),
}


def check_parallel_outputs(env: Any, outputs: tuple) -> None:
    observations, rewards, terminations, truncations, _ = outputs
    for agent, obs in observations.items():
        assert_valid_obs(env.observation_space(agent), obs)
    assert all(math.isfinite(r) for r in rewards.values())
    assert set(terminations) == set(truncations) == set(observations)


@pytest.mark.parametrize("mod", [cooperative_v0, competitive_v0, mixed_v0])
@given(data=st.data())
def test_marl_arguments_options_and_actions(mod, data: st.DataObject) -> None:
    kwargs = data.draw(
        st.fixed_dictionaries({}, optional={k: maybe_junk(v) for k, v in MARL_ARGS.items()}), label="kwargs"
    )
    try:
        env = mod.parallel_env(**kwargs)
    except ValueError as err:
        assert_names_one_of(err, kwargs)
        with pytest.raises(ValueError):
            mod.env(**kwargs)
        return
    observations, _ = env.reset(
        seed=data.draw(st.integers(0, 2**32 - 1)), options=data.draw(JUNK, label="options")
    )
    for agent, obs in observations.items():
        assert_valid_obs(env.observation_space(agent), obs)
    strategies = {agent: actions(env.action_space(agent)) for agent in env.possible_agents}
    for _ in range(N_STEPS):
        if not env.agents:
            env.reset()
        joint = {agent: data.draw(strategies[agent], label=f"action {agent}") for agent in env.agents}
        try:
            outputs = env.step(joint)
        except ValueError as err:
            assert_names_one_of(err, env.agents)
            continue
        check_parallel_outputs(env, outputs)
    if env.render_mode == "rgb_array":
        assert env.render().dtype == np.uint8

    aec = mod.env(**kwargs)
    aec.reset(seed=0)
    for _ in range(N_STEPS):
        if not aec.agents:
            break
        agent = aec.agent_selection
        obs, reward, terminated, truncated, _ = aec.last()
        assert_valid_obs(aec.observation_space(agent), obs) and math.isfinite(reward)
        if terminated or truncated:
            aec.step(None)
            continue
        try:
            aec.step(data.draw(strategies[agent], label=f"aec action {agent}"))
        except ValueError as err:
            assert_names_one_of(err, [agent])
