"""Native vector envs in detail: rendering, planning functions, argument checks, info formats and
the batched helpers, each against the single envs or an independent computation."""

from __future__ import annotations

import copy
import importlib
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import gym_advrl
from gym_advrl.envs.cartpole import ContinuousCartPoleEnv
from gym_advrl.envs.pendulum import PendulumEnv
from gym_advrl.envs.regulator import NonlinearRegulatorEnv
from gym_advrl.envs.vector._base import (
    AdvRLVectorEnv,
    RecentValues,
    batched_box_actions,
    batched_discrete_actions,
    check_autoreset_mode,
    per_instance,
    vector_metadata,
)
from gym_advrl.envs.vector._infos import FullRows, Partial, _drop_rows, _final_info, _take_rows, add_info
from gym_advrl.envs.vector._streams import BLOCK, BlockStream, RawStream
from gym_advrl.utils.validation import Interval
from tests.test_vector_envs import NUM_ENVS, _assert_same, _assert_same_info, _pair

# ---------------------------------------------------------------------- rendering
#: (id, kwargs, render modes): non-default frame sizes so that the painter's arguments matter.
RENDER_CASES = [
    ("AdvRL/Pendulum-v0", {"width": 40, "height": 30, "max_speed": 5.0}, ("rgb_array",)),
    ("AdvRL/ContinuousCartPole-v0", {"width": 50, "height": 20}, ("rgb_array",)),
    ("AdvRL/NonlinearRegulator-v0", {}, ("rgb_array",)),
    ("AdvRL/GridWorld-v0", {"size": 4, "slip": 0.3}, ("rgb_array", "ansi")),
    ("AdvRL/FourRooms-v0", {}, ("ansi",)),
    ("AdvRL/SequenceMemory-v0", {"distractors": True}, ("rgb_array", "ansi")),
    ("AdvRL/SequenceTracking-v0", {"episode_length": 9}, ("rgb_array", "ansi")),
    ("AdvRL/CausalSCM-v0", {}, ("rgb_array", "ansi")),
    ("AdvRL/CausalSCM-v0", {"action_type": "do"}, ("ansi",)),
    ("AdvRL/QuantumGate-v0", {"target": "random", "noise_prob": 0.3}, ("rgb_array", "ansi")),
]


@pytest.mark.parametrize(("env_id", "kwargs", "modes"), RENDER_CASES)
def test_render_matches_the_single_envs_frames_step_by_step(env_id: str, kwargs: dict, modes: tuple) -> None:
    """Every frame (or text) of the drawn instances equals the single env's, across autoresets:
    trails and charts of earlier steps included."""
    for mode in modes:
        native = gym.make_vec(env_id, 3, render_mode=mode, render_envs=2, max_episode_steps=6, **kwargs)
        sync = SyncVectorEnv(
            [lambda m=mode: gym.make(env_id, render_mode=m, max_episode_steps=6, **kwargs) for _ in range(2)]
        )
        native.reset(seed=1)
        sync.reset(seed=1)
        native.action_space.seed(0)
        for t in range(14):
            frames, expected = native.render(), sync.render()
            assert len(frames) == 2
            for i in range(2):
                if mode == "ansi":
                    assert frames[i] == expected[i], f"{mode} step {t} instance {i}"
                else:
                    np.testing.assert_array_equal(frames[i], expected[i], err_msg=f"step {t} instance {i}")
            actions = native.action_space.sample()
            native.step(actions)
            sync.step(actions[:2])
        native.close()
        assert native.unwrapped._painter is None


def test_render_without_mode_warns_and_before_reset_raises() -> None:
    env = gym.make_vec("AdvRL/GridWorld-v0", 2)
    env.reset(seed=0)
    with pytest.warns(
        UserWarning, match=r"WARN: You are calling render method without specifying any render mode\."
    ):
        assert env.render() is None
    drawn = gym.make_vec("AdvRL/GridWorld-v0", 3, render_mode="ansi")
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call render\(\) before reset\(\)$"):
        drawn.render()
    drawn.reset(seed=0)
    assert len(drawn.render()) == 3  # render_envs=None: every instance


def test_recent_values_keep_the_newest_values_of_the_first_instances() -> None:
    recent = RecentValues(2, 3, (2,))
    recent.start(np.array([0, 1, 2]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    np.testing.assert_array_equal(recent.get(1), [[3.0, 4.0]])
    for step in range(1, 5):
        recent.append(np.full((3, 2), float(10 * step)))
        recent.start(np.array([2]), np.zeros((1, 2)))  # an instance that is not kept: no effect
    np.testing.assert_array_equal(recent.get(0), [[20.0, 20.0], [30.0, 30.0], [40.0, 40.0]])
    got = recent.get(0)
    got[:] = -1.0
    assert recent.get(0)[0, 0] == 20.0  # a copy
    recent.start(np.array([1]), np.array([[7.0, 8.0]]))
    np.testing.assert_array_equal(recent.get(1), [[7.0, 8.0]])


# ---------------------------------------------------------------------- planning functions
def test_planning_functions_match_the_single_envs() -> None:
    rng = np.random.default_rng(0)
    obs3, next3 = rng.normal(size=(2, 5, 3)) * 2.0
    action1 = rng.normal(size=(5, 1)) * 3.0
    pendulum = gym.make_vec("AdvRL/Pendulum-v0", 2, max_torque=[1.5, 0.5], g=[9.0, 11.0]).unwrapped
    pendulum.reset(seed=0)
    single = PendulumEnv(max_torque=1.5, g=9.0)
    np.testing.assert_array_equal(
        pendulum.reward_fn(obs3, action1, next3), single.reward_fn(obs3, action1, next3)
    )
    # Clipped to instance 0's torque 1.5, not to the action space's 1.5 = max over instances (same) or 0.5.
    theta = np.arctan2(obs3[:, 1], obs3[:, 0])
    u = np.clip(action1[:, 0], -1.5, 1.5)
    expected = -(((theta + np.pi) % (2 * np.pi) - np.pi) ** 2 + 0.1 * obs3[:, 2] ** 2 + 0.001 * u**2)
    np.testing.assert_allclose(pendulum.reward_fn(obs3, action1, next3), expected, rtol=1e-12)
    assert pendulum.termination_fn(next3).tolist() == [False] * 5
    assert pendulum.termination_fn(next3[:2]).shape == (2,)

    obs4, next4 = rng.normal(size=(2, 6, 4)) * 0.2
    cartpole = gym.make_vec("AdvRL/ContinuousCartPole-v0", 2).unwrapped
    single_cp = ContinuousCartPoleEnv()
    np.testing.assert_array_equal(
        cartpole.reward_fn(obs4, rng.normal(size=(6, 1)), next4), np.ones(6, dtype=np.float64)
    )
    np.testing.assert_array_equal(cartpole.termination_fn(next4), single_cp.termination_fn(next4))
    assert cartpole.termination_fn(next4).any() and not cartpole.termination_fn(next4).all()

    regulator = gym.make_vec("AdvRL/NonlinearRegulator-v0", 2).unwrapped
    single_reg = NonlinearRegulatorEnv()
    action2 = rng.normal(size=(6, 2))
    np.testing.assert_array_equal(
        regulator.reward_fn(obs4, action2, next4 * 10), single_reg.reward_fn(obs4, action2, next4 * 10)
    )
    far = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0], [2.0, 2.0, 0.0, 0.0], [3.0, 0.1, 0.0, 0.0]])
    assert regulator.termination_fn(far).tolist() == [False, True, False, True]  # ||s|| > 3


def test_pendulum_planning_view_follows_the_physics_option() -> None:
    env = gym.make_vec("AdvRL/Pendulum-v0", 2).unwrapped
    env.reset(seed=0, options={"physics": {"max_torque": [0.25, 1.0]}})
    obs = np.array([[1.0, 0.0, 0.0]])
    # cost 0.001 * u^2 with u clipped to instance 0's 0.25
    assert env.reward_fn(obs, np.array([[2.0]]), obs)[0] == pytest.approx(-0.001 * 0.25**2, rel=1e-12)


# ---------------------------------------------------------------------- constructor arguments
def test_per_instance_values_and_errors() -> None:
    np.testing.assert_array_equal(per_instance("x", 2, 3), [2.0, 2.0, 2.0])
    out = per_instance("x", [1, 2, 3], 3)
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0, 3.0]
    assert per_instance("x", np.float32(0.5), 2).dtype == np.float64
    unit = Interval(0.0, 1.0)
    assert per_instance("x", [0.0, 1.0], 2, unit).tolist() == [0.0, 1.0]
    for bad in ("ab", b"ab", {"a": 1}, [[1.0, 2.0]], [1.0]):
        with pytest.raises(ValueError, match=r"^x must be a number or a sequence of num_envs=2 numbers"):
            per_instance("x", bad, 2)
    with pytest.raises(ValueError, match=r"^x must be a finite real number, got nan"):
        per_instance("x", float("nan"), 2)
    with pytest.raises(ValueError, match=r"^x must be a finite real number, got np.True_"):
        per_instance("x", np.bool_(True), 2)
    with pytest.raises(ValueError, match=r"^x must hold real numbers, got dtype"):
        per_instance("x", ["a", "b"], 2)
    with pytest.raises(ValueError, match=r"^x must be finite, got \[1.0, inf\]"):
        per_instance("x", [1.0, np.inf], 2)
    with pytest.raises(ValueError, match=r"x\[1\]"):
        per_instance("x", [0.5, 2.0], 2, unit)
    with pytest.raises(ValueError, match=r"^x "):
        per_instance("x", 2.0, 2, unit)
    with pytest.raises(ValueError, match="must be a number or a sequence"):
        per_instance("x", [1.0, [2.0, 3.0]], 2)


def test_autoreset_mode_and_metadata() -> None:
    assert check_autoreset_mode("SameStep") is AutoresetMode.SAME_STEP
    assert check_autoreset_mode(AutoresetMode.DISABLED) is AutoresetMode.DISABLED
    with pytest.raises(
        ValueError, match=r"autoreset_mode must be one of \('NextStep', 'SameStep', 'Disabled'\)"
    ):
        check_autoreset_mode("Later")
    assert vector_metadata(["ansi"], 7) == {
        "render_modes": ["ansi"],
        "render_fps": 7,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }
    env = gym.make_vec("AdvRL/SequenceMemory-v0", 2, autoreset_mode="SameStep").unwrapped
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.metadata["render_modes"] == ["rgb_array", "ansi"] and env.metadata["render_fps"] == 10
    assert type(env).metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP  # the class keeps its own


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_episode_steps": 0}, r"^max_episode_steps must be an integer in \[1, inf\), got 0$"),
        ({"max_episode_steps": 2.5}, "^max_episode_steps must be an integer, got 2.5$"),
        ({"render_mode": "human"}, r"render_mode must be one of \('rgb_array',\)"),
        (
            {"render_mode": "rgb_array", "render_envs": 0},
            r"^render_envs must be an integer in \[1, 3\], got 0$",
        ),
        (
            {"render_mode": "rgb_array", "render_envs": 4},
            r"^render_envs must be an integer in \[1, 3\], got 4$",
        ),
    ],
)
def test_base_arguments_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make_vec("AdvRL/Pendulum-v0", 3, vectorization_mode="vector_entry_point", **kwargs)


def test_spaces_and_time_limits() -> None:
    env = gym.make_vec("AdvRL/Pendulum-v0", 3, max_episode_steps=None, max_torque=[1.0, 3.0, 2.0]).unwrapped
    assert env.num_envs == 3 and env.render_envs == 3 and env.max_episode_steps is None
    assert env.single_action_space == gym.spaces.Box(-3.0, 3.0, (1,), np.float32)
    assert env.action_space.shape == (3, 1) and env.observation_space.shape == (3, 3)
    env.reset(seed=0)
    for _ in range(250):  # no truncation without a limit
        _, _, terminated, truncated, _ = env.step(np.ones((3, 1)))
        assert not truncated.any() and not terminated.any()
    limited = gym.make_vec("AdvRL/Pendulum-v0", 2, max_episode_steps=3)
    limited.reset(seed=0)
    flags = [limited.step(np.zeros((2, 1)))[3].tolist() for _ in range(4)]
    assert flags == [[False, False], [False, False], [True, True], [False, False]]
    tracking = gym.make_vec(
        "AdvRL/SequenceTracking-v0", 1, max_episode_steps=None, episode_length=4
    ).unwrapped
    assert tracking.max_episode_steps == 4
    assert gym.make_vec("AdvRL/SequenceTracking-v0", 1, max_episode_steps=3).unwrapped.max_episode_steps == 3


# ---------------------------------------------------------------------- reset and step arguments
def test_seeds_and_reset_arguments() -> None:
    env = gym.make_vec("AdvRL/GridWorld-v0", 3, start=None).unwrapped
    assert env.np_random_seeds == [None, None, None]
    env.reset(seed=np.int64(4))
    assert env.np_random_seeds == [4, 5, 6]
    env.reset(seed=[7, None, 9])
    assert env.np_random_seeds == [7, 5, 9]  # None keeps the generator (and its seed)
    env.reset(seed=None)
    assert env.np_random_seeds == [7, 5, 9]
    for bad in (True, "12", [1, 2], 1.5):
        with pytest.raises(
            ValueError, match=r"^seed must be None, an int or a list of num_envs=3 ints or None"
        ):
            env.reset(seed=bad)
    with pytest.raises(ValueError, match=r"seed\[1\]"):
        env.reset(seed=[1, -2, 3])
    with pytest.raises(ValueError, match="^options must be a dict or None, got list"):
        env.reset(options=[1])
    with pytest.raises(ValueError, match=r"allowed options are \('reset_mask', 'goal'\)"):
        env.reset(options={"speed": 1, "goal": (4, 4)})
    for mask in (np.array([1, 0, 1]), np.array([True, False]), [[True, True, True]]):
        with pytest.raises(
            ValueError, match=r"options\['reset_mask'\] must be a boolean array of shape \(3,\)"
        ):
            env.reset(options={"reset_mask": mask})
    fresh = gym.make_vec("AdvRL/GridWorld-v0", 2).unwrapped
    message = "the first reset must reset every instance (options['reset_mask'] all True)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        fresh.reset(options={"reset_mask": np.array([True, False])})
    obs, info = fresh.reset(options={"reset_mask": np.array([True, True])})
    assert obs.shape == (2, 2) and info["_position"].tolist() == [True, True]
    obs, info = fresh.reset(options={"reset_mask": np.array([False, False])})
    assert info == {} and obs.shape == (2, 2)


def test_disabled_autoreset_names_the_finished_instances() -> None:
    env = gym.make_vec("AdvRL/SequenceTracking-v0", 3, autoreset_mode="Disabled", max_episode_steps=2)
    env.reset(seed=0)
    env.step(np.zeros(3, dtype=np.int64))
    env.reset(options={"reset_mask": np.array([False, True, False])})
    env.step(np.zeros(3, dtype=np.int64))  # instances 0 and 2 reach the limit
    message = (
        "autoreset_mode is Disabled and instances [0, 2] have finished; reset them with options['reset_mask']"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        env.step(np.zeros(3, dtype=np.int64))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_batched_box_actions() -> None:
    space = gym.spaces.Box(-1.0, 2.0, (1,), np.float32)
    out = batched_box_actions([0.5, 3, -4], space, 3)  # a flat batch for a (1,) space
    assert out.dtype == np.float64 and out.shape == (3, 1) and out[:, 0].tolist() == [0.5, 2.0, -1.0]
    assert batched_box_actions(np.array([[1e308], [1e308], [0]]), space, 3)[:, 0].tolist() == [2.0, 2.0, 0.0]
    with pytest.raises(ValueError, match=r"^actions must be numeric \(int or float\), got dtype <U1"):
        batched_box_actions(["a", "b", "c"], space, 3)
    with pytest.raises(ValueError, match=r"^actions must have shape \(3, 1\), got shape \(2, 1\)"):
        batched_box_actions(np.zeros((2, 1)), space, 3)
    with pytest.raises(ValueError, match=r"^actions must have shape \(3, 1\), got shape \(1, 3, 1\)"):
        batched_box_actions(np.zeros((1, 3, 1)), space, 3)
    with pytest.raises(ValueError, match=r"^actions must be finite \(no NaN or inf\)"):
        batched_box_actions([0.0, -np.inf, 0.0], space, 3)
    with pytest.raises(ValueError, match=r"^actions must be numeric with shape \(3, 1\)"):
        batched_box_actions([[0.0], [1.0, 2.0], 0.0], space, 3)


def test_batched_discrete_actions() -> None:
    space = gym.spaces.Discrete(3, start=1)
    out = batched_discrete_actions([[1], [3.0]], space, 2)
    assert out.dtype == np.int64 and out.tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"^actions must be integers in \[1, 3\], got \[0, 1\]"):
        batched_discrete_actions([0, 1], space, 2)
    with pytest.raises(ValueError, match=r"^actions must be integers in \[1, 3\], got \[1, 4\]"):
        batched_discrete_actions([1, 4], space, 2)
    with pytest.raises(ValueError, match=r"^actions must be integers, got \[1.5, 2.0\]"):
        batched_discrete_actions([1.5, 2.0], space, 2)
    with pytest.raises(ValueError, match=r"^actions must be finite integers \(no NaN or inf\)"):
        batched_discrete_actions([np.nan, 2.0], space, 2)
    with pytest.raises(ValueError, match=r"^actions must be integers, got dtype bool"):
        batched_discrete_actions([True, False], space, 2)
    with pytest.raises(ValueError, match=r"^actions must have shape \(2,\), got shape \(3,\)"):
        batched_discrete_actions([1, 2, 3], space, 2)
    with pytest.raises(ValueError, match=r"^actions must have shape \(2,\), got shape \(1, 1, 2\)"):
        batched_discrete_actions([[[1, 2]]], space, 2)
    with pytest.raises(ValueError, match=r"^actions must be 2 integers"):
        batched_discrete_actions([[1], [2, 3]], space, 2)


# ---------------------------------------------------------------------- infos
def test_add_info_builds_the_vector_format() -> None:
    infos = add_info({}, {"a": np.array([1.5, 2.5]), "nested": {"b": np.array([1, 2])}}, np.array([0, 2]), 3)
    assert infos["a"].tolist() == [1.5, 0.0, 2.5] and infos["_a"].tolist() == [True, False, True]
    assert infos["nested"]["b"].tolist() == [1, 0, 2] and infos["nested"]["_b"].tolist() == [
        True,
        False,
        True,
    ]
    assert infos["_nested"].tolist() == [True, False, True]
    add_info(infos, {"a": np.array([9.0])}, np.array([1]), 3)
    assert infos["a"].tolist() == [1.5, 9.0, 2.5] and infos["_a"].tolist() == [True, True, True]
    partial = Partial(np.array([4, 5, 6]), np.array([False, True, True]))
    add_info(
        infos, {"p": partial, "none": Partial(np.zeros(3), np.zeros(3, dtype=bool))}, np.array([0, 1, 2]), 3
    )
    assert "none" not in infos and "_none" not in infos
    assert infos["p"].tolist() == [0, 5, 6] and infos["_p"].tolist() == [False, True, True]
    full = FullRows(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    fresh = add_info({}, {"f": full}, np.array([1]), 3)
    assert fresh["f"].tolist() == [[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]] and fresh["_f"].tolist() == [
        False,
        True,
        False,
    ]
    add_info(fresh, {"f": FullRows(full.values * 10)}, np.array([2]), 3)
    assert fresh["f"].tolist() == [[0.0, 0.0], [3.0, 4.0], [50.0, 60.0]]
    assert fresh["_f"].tolist() == [False, True, True]
    masked = add_info({}, {"m": np.array([7])}, np.array([1]), 3, row_mask=np.array([False, True, False]))
    assert masked["m"].tolist() == [0, 7, 0] and masked["_m"].tolist() == [False, True, False]


def test_take_final_and_drop_rows() -> None:
    values = {
        "a": np.array([1, 2, 3]),
        "p": Partial(np.array([4, 5, 6]), np.array([True, False, True])),
        "f": FullRows(np.array([7, 8, 9])),
        "n": {"b": np.array([0.5, 1.5, 2.5])},
        "cells": np.array([[0, 1], [2, 3], [4, 5]]),
    }
    taken = _take_rows(values, np.array([2, 0]))
    assert taken["cells"].tolist() == [[4, 5], [0, 1]]
    assert taken["a"].tolist() == [3, 1] and taken["n"]["b"].tolist() == [2.5, 0.5]
    assert taken["p"].values.tolist() == [6, 4] and taken["p"].present.tolist() == [True, True]
    assert taken["f"].values.tolist() == [7, 8, 9]  # every instance's, the merge takes the rows
    del values["cells"]
    infos = add_info({}, values, np.arange(3), 3)
    final = _final_info(infos, np.array([1]))
    assert set(final) == {"a", "_a", "f", "_f", "n", "_n"}  # "p" has no entry for instance 1
    assert final["a"].tolist() == [0, 2, 0] and final["_a"].tolist() == [False, True, False]
    assert final["n"]["b"].tolist() == [0.0, 1.5, 0.0] and final["_n"].tolist() == [False, True, False]
    dropped = _drop_rows(infos, np.array([0, 2]))
    assert set(dropped) == {"a", "_a", "f", "_f", "n", "_n"}  # "p" only had instances 0 and 2
    assert dropped["_a"].tolist() == [False, True, False] and dropped["a"] is infos["a"]
    assert dropped["n"]["_b"].tolist() == [False, True, False]
    assert infos["_a"].tolist() == [True, True, True]  # the original masks are left alone


# ---------------------------------------------------------------------- random streams
def test_stream_defaults_and_errors() -> None:
    rngs = [np.random.default_rng(0)]
    block = BlockStream(rngs, lambda rng, k: rng.normal(size=(k, 2)), (2,))
    assert block.block == BLOCK == 256 and block.keep_states and block._blocks.dtype == np.float64
    assert block.take().shape == (1, 2)
    raw = RawStream(rngs)
    assert raw.block == BLOCK and raw.keep_states
    unsynced = RawStream(rngs, keep_states=False)
    with pytest.raises(RuntimeError, match=r"^sync needs a stream made with keep_states=True$"):
        unsynced.sync(np.array([0]))
    for n in (0, 2**32):
        with pytest.raises(ValueError, match=r"^n must be an integer in \[1, 2\*\*32\), got"):
            raw.integers(np.array([0]), n)
    assert raw.integers(np.array([0]), 2**32 - 1).dtype == np.int64
    mt = RawStream([np.random.Generator(np.random.MT19937(0))])
    with pytest.raises(ValueError, match="RawStream needs PCG64 generators, got MT19937"):
        mt.random(None)


def test_raw_stream_uniform_across_block_ends() -> None:
    rngs = [np.random.default_rng(s) for s in (3, 4)]
    twins = [np.random.default_rng(s) for s in (3, 4)]
    stream = RawStream(rngs, block=5)
    rows = np.array([0, 1])
    for t in range(9):
        size = 1 + t % 4
        low, high = -0.5 * t, np.arange(size) + 1.0
        got = stream.uniform(rows, low, high, size)
        assert got.shape == (2, size)
        for i in rows:
            np.testing.assert_array_equal(got[i], twins[i].uniform(low, high, size=size))
    stream.sync(rows)
    assert [r.random() for r in rngs] == [twin.random() for twin in twins]
    assert stream.uniform(np.array([], dtype=np.int64), 0.0, 1.0, 3).shape == (0, 3)


def test_block_stream_sync_after_partial_use_and_forget() -> None:
    rngs = [np.random.default_rng(8), np.random.default_rng(9)]
    twins = [np.random.default_rng(8), np.random.default_rng(9)]
    stream = BlockStream(rngs, lambda rng, k: rng.standard_normal((k, 3)), (3,), block=4)
    for _ in range(6):
        got = stream.take(np.array([1]))
        np.testing.assert_array_equal(got[0], twins[1].standard_normal(3))
    stream.sync(np.array([0, 1]))  # instance 0 never drew: its generator is untouched
    assert rngs[0].random() == twins[0].random() and rngs[1].random() == twins[1].random()
    stream.take()
    rngs[0] = np.random.default_rng(50)
    stream.forget(np.array([0]))
    np.testing.assert_array_equal(stream.take(np.array([0]))[0], np.random.default_rng(50).standard_normal(3))


# ---------------------------------------------------------------------- defaults and options
def _entry_class(env_id: str) -> type:
    module, name = gym_advrl.VECTOR_ENTRY_POINTS[env_id].split(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_the_classes_defaults_are_the_registered_envs(env_id: str) -> None:
    """Made directly with no argument, a vector env is one instance of ``gym.make(id)``."""
    env = _entry_class(env_id)()
    assert env.num_envs == 1 and env.render_envs == 1 and env.render_mode is None
    assert env.max_episode_steps == gym.spec(env_id).max_episode_steps
    assert env.autoreset_mode is AutoresetMode.NEXT_STEP
    single = gym.make(env_id)
    obs, _ = env.reset(seed=2)
    single_obs, _ = single.reset(seed=2)
    np.testing.assert_allclose(obs[0], single_obs, rtol=1e-6, atol=1e-6)
    env.action_space.seed(3)
    for t in range(40):
        actions = env.action_space.sample()
        obs, reward, terminated, truncated, _ = env.step(actions)
        single_obs, single_reward, single_terminated, *_ = single.step(actions[0])
        np.testing.assert_allclose(obs[0], single_obs, rtol=1e-6, atol=1e-6, err_msg=f"step {t}")
        assert reward[0] == pytest.approx(single_reward, rel=1e-6, abs=1e-9)
        if terminated[0] or truncated[0]:
            break


def test_pendulum_reset_options_and_per_instance_torque() -> None:
    native = gym.make_vec("AdvRL/Pendulum-v0", 2, max_torque=[0.5, 2.0])
    singles = [gym.make("AdvRL/Pendulum-v0", max_torque=t) for t in (0.5, 2.0)]
    options = {"x_init": 0.5, "y_init": 0.25, "physics": {"g": 5.0}}
    obs, info = native.reset(seed=3, options=options)
    assert info["physics"]["g"].tolist() == [5.0, 5.0] and info["physics"]["max_torque"].tolist() == [
        0.5,
        2.0,
    ]
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=3 + i, options=options)[0])
    assert np.all(np.abs(native.unwrapped.state[0]) <= 0.5) and np.all(
        np.abs(native.unwrapped.state[1]) <= 0.25
    )
    for t in range(20):
        actions = np.array([[1.5], [-1.5]] if t % 2 else [[-1.5], [1.5]], dtype=np.float32)
        obs, reward, *_ = native.step(actions)
        for i, env in enumerate(singles):
            single_obs, single_reward, *_ = env.step(actions[i])
            np.testing.assert_allclose(obs[i], single_obs, rtol=1e-6, atol=1e-6, err_msg=f"step {t}")
            assert reward[i] == pytest.approx(single_reward, rel=1e-9)
    assert native.unwrapped.last_u.tolist() == [0.5, -1.5]  # clipped to instance 0's torque
    for name in ("x_init", "y_init"):
        for value in (-0.1, 9.0):
            with pytest.raises(ValueError, match=f"^{name} "):
                native.reset(options={name: value})
    with pytest.raises(
        ValueError, match=r"^physics must be a dict with keys from \('g', 'm', 'l', 'damping', 'max_torque'\)"
    ):
        native.reset(options={"physics": [1.0]})
    with pytest.raises(ValueError, match=r"^unknown physics parameter\(s\) \['k'\]; allowed are \('g',"):
        native.reset(options={"physics": {"k": 1.0, "g": 2.0}})


def test_cartpole_reset_options() -> None:
    native = gym.make_vec("AdvRL/ContinuousCartPole-v0", 2)
    singles = [gym.make("AdvRL/ContinuousCartPole-v0") for _ in range(2)]
    options = {"low": -0.2, "high": 0.1, "physics": {"masspole": 0.3, "gravity": [9.0, 12.0]}}
    obs, info = native.reset(seed=5, options=options)
    assert info["physics"]["gravity"].tolist() == [9.0, 12.0] and info["physics"]["masspole"].tolist() == [
        0.3,
        0.3,
    ]
    for i, env in enumerate(singles):
        single_options = dict(options, physics={"masspole": 0.3, "gravity": (9.0, 12.0)[i]})
        np.testing.assert_array_equal(obs[i], env.reset(seed=5 + i, options=single_options)[0])
    for t in range(15):
        actions = np.array([[0.7], [-0.3]], dtype=np.float32)
        obs, reward, terminated, *_ = native.step(actions)
        for i, env in enumerate(singles):
            single_obs, _, single_terminated, *_ = env.step(actions[i])
            np.testing.assert_allclose(obs[i], single_obs, rtol=1e-6, atol=1e-6, err_msg=f"step {t}")
            assert terminated[i] == single_terminated
        if terminated.any():
            break
    with pytest.raises(ValueError, match=r"^reset options low must be <= high, got low=0.1, high=0.0"):
        native.reset(options={"low": 0.1, "high": 0.0})
    for name, bad in (("low", -0.5), ("low", 0.5), ("high", -0.5), ("high", 0.5)):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            native.reset(options={name: bad})
    native.reset(seed=0, options={"low": 0.1, "high": 0.1})  # low == high: a fixed start
    assert native.unwrapped.state.tolist() == [[0.1, 0.1]] * 4


def test_grid_world_goals_start_and_position() -> None:
    env = gym.make_vec("AdvRL/GridWorld-v0", 3, size=4).unwrapped
    _, info = env.reset(seed=0, options={"goal": (2, 3)})
    assert info["goal"].tolist() == [[2, 3]] * 3 and env.goal.tolist() == [[2, 3]] * 3
    _, info = env.reset(
        options={"goal": [(1, 1), (3, 0), (0, 2)], "reset_mask": np.array([True, False, True])}
    )
    assert env.goal.tolist() == [[1, 1], [2, 3], [0, 2]]
    assert info["goal"][[0, 2]].tolist() == [[1, 1], [0, 2]] and info["_goal"].tolist() == [True, False, True]
    obs, *_, step_info = env.step(np.array([1, 1, 1]))
    np.testing.assert_array_equal(env.position, step_info["position"])
    np.testing.assert_array_equal(env.position.astype(np.float32), obs)
    with pytest.raises(ValueError, match=r"^goal must differ from the start cell \(0, 0\)"):
        env.reset(options={"goal": (0, 0)})
    # Two free cells and a random start: the start is the cell that is not the goal, no draw.
    tiny = gym.make_vec(
        "AdvRL/GridWorld-v0", 2, size=2, walls=[(1, 0), (1, 1)], start=None, goal=(0, 1)
    ).unwrapped
    obs, info = tiny.reset(seed=0)
    assert info["position"].tolist() == [[0, 0], [0, 0]]
    single = gym.make("AdvRL/GridWorld-v0", size=2, walls=[(1, 0), (1, 1)], start=None, goal=(0, 1))
    assert single.reset(seed=0)[1]["position"] == (0, 0)


def test_four_rooms_rgb_default_cell_size() -> None:
    native = gym.make_vec("AdvRL/FourRooms-v0", 2, obs_mode="rgb")
    single = gym.make("AdvRL/FourRooms-v0", obs_mode="rgb")
    obs, _ = native.reset(seed=4)
    np.testing.assert_array_equal(obs[0], single.reset(seed=4)[0])
    assert obs.shape == (2, 13 * 8, 13 * 8, 3)  # 13 x 13 cells of 8 pixels


def test_quantum_long_circuits_and_qasm_defaults() -> None:
    kwargs = {"threshold": 1.0 - 1e-12, "target": [0, 0, 0, 1]}  # |11>: rarely met
    native = gym.make_vec("AdvRL/QuantumGate-v0", 2, max_episode_steps=45, **kwargs).unwrapped
    singles = [gym.make("AdvRL/QuantumGate-v0", max_episode_steps=45, **kwargs) for _ in range(2)]
    native.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
    rng = np.random.default_rng(0)
    for _ in range(40):  # longer than the 32 codes held at first
        actions = rng.integers(native.single_action_space.n, size=2)
        _, _, terminated, _, _ = native.step(actions)
        infos = [env.step(int(a))[4] for env, a in zip(singles, actions, strict=True)]
        assert not terminated.any()
    for i, env in enumerate(singles):
        assert native.gate_labels(i) == tuple(infos[i]["gates"]) and len(native.gate_labels(i)) == 40
        assert native.to_qasm(i) == env.unwrapped.to_qasm()
        assert native.target_circuit(i) == ()


def test_quantum_random_target_that_cannot_leave_the_start_state() -> None:
    env = gym.make_vec("AdvRL/QuantumGate-v0", 2, target="random", gates=["z"], target_depth=2)
    with pytest.raises(ValueError, match=r"^target='random': 100 random circuits of target_depth=2"):
        env.reset(seed=0)


@pytest.mark.parametrize(
    ("env_id", "shared"),
    [
        ("AdvRL/Pendulum-v0", {"damping": 0.2}),
        ("AdvRL/ContinuousCartPole-v0", {}),
        ("AdvRL/NonlinearRegulator-v0", {"process_noise": 0.3}),
        ("AdvRL/SequenceTracking-v0", {}),
        ("AdvRL/QuantumGate-v0", {}),
        ("AdvRL/QuantumGate-v0", {"noise_prob": 0.3}),
        ("AdvRL/SequenceMemory-v0", {"distractors": True, "delay": 2}),
        ("AdvRL/GridWorld-v0", {"size": 3, "slip": 0.4, "start": None}),
        ("AdvRL/CausalSCM-v0", {"action_type": "do"}),
    ],
)
def test_stepping_only_the_active_rows_gives_the_same_episodes(env_id: str, shared: dict) -> None:
    """The ``_step_rows(actions, rows)`` hook on some rows (what the base class calls when
    ``step_all_rows`` is false) reproduces the single envs as stepping every row does: instances
    out of phase, so that every autoreset steps some rows and resets the others."""
    native, sync = _pair(env_id, {"max_episode_steps": 4, **shared}, None, AutoresetMode.NEXT_STEP)
    native.unwrapped.step_all_rows = False
    native.reset(seed=0)
    sync.reset(seed=0)
    native.step(np.stack([native.single_action_space.sample() for _ in range(NUM_ENVS)]) * 0)
    sync.step(np.stack([native.single_action_space.sample() for _ in range(NUM_ENVS)]) * 0)
    native.reset(seed=10, options={"reset_mask": np.arange(NUM_ENVS) % 2 == 0})
    sync.reset(seed=10, options={"reset_mask": np.arange(NUM_ENVS) % 2 == 0})
    # Instances 0, 2, 4 and 1, 3, 5 are a step apart: every step resets some and steps the others.
    native.action_space.seed(1)
    ends = 0
    for t in range(30):
        actions = native.action_space.sample()
        result_n, result_s = native.step(actions), sync.step(actions)
        for name, a, b in zip(
            ("obs", "reward", "terminated", "truncated"), result_n[:4], result_s[:4], strict=True
        ):
            _assert_same(a, b, f"step {t} {name}")
        _assert_same_info(result_n[4], result_s[4], f"step {t} info")
        ends += int(np.sum(result_n[2] | result_n[3]))
    assert ends >= 2 * NUM_ENVS


def test_recent_values_append_for_some_rows() -> None:
    recent = RecentValues(3, 2)
    recent.start(np.arange(3), np.array([1.0, 2.0, 3.0]))
    recent.append(np.array([10.0, 20.0, 30.0, 40.0]), np.array([1, 3]))
    assert [recent.get(i).tolist() for i in range(3)] == [[1.0], [2.0, 20.0], [3.0]]
    recent.append(np.array([11.0, 21.0, 31.0, 41.0]))
    assert [recent.get(i).tolist() for i in range(3)] == [[1.0, 11.0], [20.0, 21.0], [3.0, 31.0]]


def test_goal_option_errors_name_the_goal() -> None:
    env = gym.make_vec("AdvRL/FourRooms-v0", 3).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"^goal \(0, 0\) is a wall"):
        env.reset(options={"goal": (0, 0)})
    # Two cells for three instances, or cells of uneven lengths: one (bad) cell, not per instance.
    for bad in ([(1, 1), (2, 2)], [(1, 1), (2,), (3, 3)]):
        with pytest.raises(ValueError, match=r"^goal "):
            env.reset(options={"goal": bad})
    assert env.goal.tolist() == [list(gym_advrl.envs.grid_world.FOUR_ROOMS_GOAL)] * 3  # unchanged


def test_physics_option_ranges_name_the_parameter() -> None:
    env = gym.make_vec("AdvRL/Pendulum-v0", 2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"^m must be"):
        env.reset(options={"physics": {"m": -1.0}})
    with pytest.raises(ValueError, match=r"^l\[1\] must be"):
        env.reset(options={"physics": {"l": [1.0, 0.0]}})


def test_quantum_qasm_leaves_the_noise_out_by_default() -> None:
    kwargs = {"noise_prob": 0.5}
    native = gym.make_vec("AdvRL/QuantumGate-v0", 2, **kwargs).unwrapped
    singles = [gym.make("AdvRL/QuantumGate-v0", **kwargs) for _ in range(2)]
    native.reset(seed=1)
    for i, env in enumerate(singles):
        env.reset(seed=1 + i)
    for _ in range(6):
        native.step(np.array([0, 1]))
        for env, action in zip(singles, (0, 1), strict=True):
            env.step(action)
    for i, env in enumerate(singles):
        assert native.to_qasm(i) == env.unwrapped.to_qasm()
        assert native.to_qasm(i, include_noise=True) == env.unwrapped.to_qasm(include_noise=True)
        assert native.to_qasm(i) != native.to_qasm(i, include_noise=True)  # noise was drawn


def test_goal_per_instance_may_not_be_the_start() -> None:
    env = gym.make_vec("AdvRL/GridWorld-v0", 3).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"^goal must differ from the start cell \(0, 0\)"):
        env.reset(options={"goal": [(1, 1), (0, 0), (2, 2)]})


def test_tracking_time_limit_default_is_below_a_longer_episode() -> None:
    cls = _entry_class("AdvRL/SequenceTracking-v0")
    assert cls(episode_length=60).max_episode_steps == 50
    assert cls(episode_length=30).max_episode_steps == 30
    assert cls(episode_length=30, max_episode_steps=None).max_episode_steps == 30


def test_partial_masks_are_boolean() -> None:
    partial = Partial([4, 5, 6], [0, 1, 1])
    assert partial.present.dtype == np.bool_ and partial.values[partial.present].tolist() == [5, 6]
    assert add_info({}, {"p": partial}, np.arange(3), 3)["p"].tolist() == [0, 5, 6]


@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("AdvRL/Pendulum-v0", {"max_speed": 0.0}, "max_speed"),
        ("AdvRL/Pendulum-v0", {"dt": 2.0}, "dt"),
        ("AdvRL/ContinuousCartPole-v0", {"tau": 0.5}, "tau"),
    ],
)
def test_classic_scalar_arguments_are_checked(env_id: str, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} "):
        _entry_class(env_id)(2, **kwargs)


@pytest.mark.parametrize(
    ("env_id", "physics"),
    [
        ("AdvRL/Pendulum-v0", {"m": [0.5, 1.3], "l": [0.7, 1.9], "damping": 0.3, "max_torque": [0.5, 2.0]}),
        ("AdvRL/ContinuousCartPole-v0", {"length": [0.3, 0.8], "masspole": [0.2, 0.05]}),
    ],
)
def test_classic_states_and_rewards_are_bit_identical(env_id: str, physics: dict) -> None:
    """The states (float64) and rewards equal the single envs' exactly, not only within a tolerance."""
    native = gym.make_vec(env_id, 2, **physics).unwrapped
    singles = [
        gym.make(env_id, **{k: v[i] if isinstance(v, list) else v for k, v in physics.items()})
        for i in range(2)
    ]
    native.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
    rng = np.random.default_rng(0)
    for t in range(60):
        actions = rng.uniform(-2.0, 2.0, size=(2, 1)).astype(np.float32)
        obs, reward, terminated, *_ = native.step(actions)
        for i, env in enumerate(singles):
            single_obs, single_reward, *_ = env.step(actions[i])
            assert native.state[:, i].tolist() == list(env.unwrapped.state), f"step {t} instance {i}"
            np.testing.assert_array_equal(obs[i], single_obs)
            assert reward[i] == single_reward
        if terminated.any():
            break


def test_physics_option_of_a_partial_reset_leaves_the_other_instances() -> None:
    native = gym.make_vec("AdvRL/Pendulum-v0", 2).unwrapped
    singles = [gym.make("AdvRL/Pendulum-v0") for _ in range(2)]
    native.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
    _, info = native.reset(seed=5, options={"reset_mask": np.array([True, False]), "physics": {"m": 2.0}})
    assert native.physics["m"].tolist() == [2.0, 1.0]
    assert info["physics"]["m"].tolist() == [2.0, 0.0] and info["physics"]["_m"].tolist() == [True, False]
    singles[0].reset(seed=5, options={"physics": {"m": 2.0}})
    for _ in range(5):
        actions = np.array([[0.3], [-0.7]], dtype=np.float32)
        obs, *_ = native.step(actions)
        for i, env in enumerate(singles):
            np.testing.assert_array_equal(obs[i], env.step(actions[i])[0])


def test_tracking_chart_of_episodes_longer_than_the_drawn_steps() -> None:
    kwargs = {"render_mode": "rgb_array", "episode_length": 260, "max_episode_steps": 300}
    native = gym.make_vec("AdvRL/SequenceTracking-v0", 1, **kwargs)
    single = gym.make("AdvRL/SequenceTracking-v0", **kwargs)
    native.reset(seed=3)
    single.reset(seed=3)
    for t in range(255):
        native.step(np.array([t % 3 % 2]))
        single.step(t % 3 % 2)
    np.testing.assert_array_equal(native.render()[0], single.render())


def test_quantum_random_target_at_the_threshold_is_drawn_again() -> None:
    """With RX alone on one qubit every depth-1 target is RX|0>, at fidelity cos^2(angle / 2) from
    |0>: a threshold at or below it rejects every draw (the start must be below the threshold)."""
    kwargs = {"n_qubits": 1, "gates": ["rx"], "target": "random", "target_depth": 1, "rotation_angle": 1.36}
    probe = gym.make_vec("AdvRL/QuantumGate-v0", 1, **kwargs).unwrapped
    obs, _ = probe.reset(seed=0)  # one action: its codes are drawn as NumPy's integers(1), without a draw
    single = gym.make("AdvRL/QuantumGate-v0", **kwargs)
    np.testing.assert_array_equal(obs[0], single.reset(seed=0)[0])
    assert probe.target_circuit(0) == single.unwrapped.target_circuit == ("rx q[0]",)
    start_fidelity = float(np.abs(probe.targets[0, 0]) ** 2)
    assert start_fidelity == pytest.approx(np.cos(0.68) ** 2, rel=1e-12)  # 0.6135..., whose cube is below 0.5
    message = (
        r"^target='random': 100 random circuits of target_depth=1 over gates=\('rx',\) all left \|0\.\.\.0> "
        r"within the threshold; use more gates or a deeper circuit$"
    )
    for threshold in (start_fidelity, 0.5):
        with pytest.raises(ValueError, match=message):
            gym.make_vec("AdvRL/QuantumGate-v0", 2, threshold=threshold, **kwargs).reset(seed=0)
    with pytest.raises(ValueError, match=message):
        gym.make("AdvRL/QuantumGate-v0", threshold=0.5, **kwargs).reset(seed=0)


def test_raw_stream_integers_of_one_value_draw_nothing() -> None:
    """As NumPy's ``integers(1)``: zeros, and the generator (its cached half included) is untouched."""
    rngs, twins = [np.random.default_rng(6)], [np.random.default_rng(6)]
    stream = RawStream(rngs, block=4)
    rows = np.array([0])
    for t in range(7):
        n = (1, 5, 1, 1, 7)[t % 5]
        assert stream.integers(rows, n).tolist() == [int(twins[0].integers(n))]
        assert stream.integers(np.array([0, 0]), 1).dtype == np.int64
    stream.sync(rows)
    assert rngs[0].random() == twins[0].random()


def test_cartpole_terminates_strictly_beyond_the_thresholds() -> None:
    """At rest exactly on a threshold, a step with no force stays there: not terminated (|v| > limit),
    as the single env; just beyond, terminated."""
    native = gym.make_vec("AdvRL/ContinuousCartPole-v0", 4).unwrapped
    single = gym.make("AdvRL/ContinuousCartPole-v0").unwrapped
    native.reset(seed=0)
    x_limit, theta_limit = gym_advrl.envs.cartpole.X_THRESHOLD, gym_advrl.envs.cartpole.THETA_THRESHOLD
    starts = [
        (x_limit, 0.0, 0.0, 0.0),
        (-x_limit, 0.0, 0.0, 0.0),
        (0.0, 0.0, theta_limit, 0.0),
        (0.0, 0.0, 0.0, 0.0),
    ]
    native.state[:] = np.array(starts).T
    _, _, terminated, _, _ = native.step(np.zeros((4, 1)))
    assert native.state[0, 0] == x_limit and native.state[2, 2] == theta_limit
    expected = []
    for start in starts:
        single.reset(seed=0)
        single.state = start
        expected.append(single.step(np.zeros(1))[2])
    assert terminated.tolist() == expected == [False, False, False, False]
    native.reset(seed=0)
    native.state[:] = np.array([(np.nextafter(x_limit, 3.0), 0.0, 0.0, 0.0)] * 4).T
    assert native.step(np.zeros((4, 1)))[2].all()


def test_cartpole_runs_off_the_track() -> None:
    """A long light pole falls slowly: pushed right all the time, the cart leaves the track first
    (|x| > 2.4, while its speed passed 2.4 long before), at the same step as the single env."""
    kwargs = {"length": 100.0, "masspole": 0.001}
    native = gym.make_vec("AdvRL/ContinuousCartPole-v0", 1, **kwargs)
    single = gym.make("AdvRL/ContinuousCartPole-v0", **kwargs)
    native.reset(seed=0)
    single.reset(seed=0)
    for t in range(100):
        obs, _, terminated, _, _ = native.step(np.ones((1, 1)))
        single_obs, _, single_terminated, _, _ = single.step(np.ones(1))
        assert terminated[0] == single_terminated, f"step {t}"
        if single_terminated:
            break
    assert t > 20 and obs[0, 0] > 2.4 and abs(obs[0, 2]) < 0.2
    np.testing.assert_array_equal(obs[0], single_obs)


def test_cartpole_step_hook_on_some_rows() -> None:
    """``_step_rows(actions, rows)`` advances those rows only: force, state, termination and the
    clipping of a terminal observation, as stepping them alone would."""
    env = gym.make_vec("AdvRL/ContinuousCartPole-v0", 4).unwrapped
    env.reset(seed=0)
    assert env.last_force.tolist() == [0.0] * 4
    # Instances 1 and 3 leave the track (and the observation bounds) in one step, on either side.
    env.state[:, 1] = [2.39, 200.0, 0.0, 0.0]
    env.state[:, 3] = [-2.39, -200.0, 0.0, 0.0]
    before = env.state.copy()
    reward, terminated, info = env._step_rows(np.array([[0.5], [-0.25], [1.0]]), np.array([1, 2, 3]))
    assert reward.tolist() == [1.0, 1.0, 1.0] and terminated.tolist() == [True, False, True] and info == {}
    np.testing.assert_array_equal(env.state[:, 0], before[:, 0])
    assert env.last_force.tolist() == [0.0, 5.0, -2.5, 10.0]
    assert env.state[0, 1] == 2.39 + 0.02 * 200.0
    obs = env._observations()
    assert obs[1, 0] == np.float32(4.8) and obs[3, 0] == np.float32(-4.8)
    assert obs[2, 0] == np.float32(env.state[0, 2])
    env.reset(seed=1)
    assert env.last_force.tolist() == [0.0] * 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"confounded": True},
        {"action_type": "do", "intervenable": ["X2", "X3"]},
    ],
)
def test_causal_steps_match(kwargs: dict) -> None:
    """Additive actions on a confounded SCM (the hidden confounder enters every step's values), and
    interventions on a variable other than the action's target (the action itself is 0)."""
    native, sync = _pair("AdvRL/CausalSCM-v0", kwargs, None, AutoresetMode.NEXT_STEP)
    if kwargs.get("action_type") == "do":
        assert len(native.unwrapped.intervenable) >= 2
    native.reset(seed=2)
    sync.reset(seed=2)
    native.action_space.seed(2)
    for t in range(30):
        actions = native.action_space.sample()
        result_n, result_s = native.step(actions), sync.step(actions)
        for name, a, b in zip(("obs", "reward"), result_n[:2], result_s[:2], strict=True):
            _assert_same(a, b, f"step {t} {name}")
        _assert_same_info(result_n[4], result_s[4], f"step {t} info")


def test_grid_world_layout_and_default_cell_size() -> None:
    kwargs = {"layout": "S..#\n.#..\n...G", "obs_mode": "rgb", "step_reward": -0.5, "goal_reward": 3.0}
    native = gym.make_vec("AdvRL/GridWorld-v0", 2, **kwargs)
    single = gym.make("AdvRL/GridWorld-v0", **kwargs)
    obs, info = native.reset(seed=0)
    np.testing.assert_array_equal(obs[1], single.reset(seed=1)[0])
    assert obs.shape == (2, 3 * 8, 4 * 8, 3) and info["goal"].tolist() == [[2, 3], [2, 3]]
    rewards = []
    for action in (1, 1, 2, 2, 1):
        obs, reward, *_ = native.step(np.array([action, action]))
        single_obs, single_reward, *_ = single.step(action)
        np.testing.assert_array_equal(obs[1], single_obs)
        assert reward[1] == single_reward
        rewards.append(single_reward)
    assert rewards[0] == -0.5 and 3.0 in rewards


def test_regulator_process_noise_is_checked() -> None:
    with pytest.raises(ValueError, match=r"^process_noise must be"):
        gym.make_vec("AdvRL/NonlinearRegulator-v0", 2, process_noise=-1.0)
    with pytest.raises(ValueError, match=r"^process_noise\[1\] must be"):
        gym.make_vec("AdvRL/NonlinearRegulator-v0", 2, process_noise=[0.1, 20.0])


def test_stream_sync_twice_in_a_row() -> None:
    rngs, twin = [np.random.default_rng(11)], np.random.default_rng(11)
    stream = BlockStream(rngs, lambda rng, k: rng.normal(size=(k, 1)), (1,), block=3)
    assert stream.take()[0, 0] == twin.normal()
    stream.sync(np.array([0]))
    stream.sync(np.array([0]))  # nothing drawn since: the generator stays where it is
    assert rngs[0].random() == twin.random()


def test_quantum_random_target_without_noise_and_exact_success() -> None:
    native, sync = _pair("AdvRL/QuantumGate-v0", {"target": "random"}, None, AutoresetMode.NEXT_STEP)
    native.reset(seed=4)
    sync.reset(seed=4)
    native.action_space.seed(4)
    for t in range(25):
        actions = native.action_space.sample()
        result_n, result_s = native.step(actions), sync.step(actions)
        for name, a, b in zip(("obs", "reward", "terminated"), result_n[:3], result_s[:3], strict=True):
            _assert_same(a, b, f"step {t} {name}")
    # Fidelity exactly at the threshold (X|0> = |1>, fidelity 1.0): a success, as in the single env.
    kwargs = {"n_qubits": 1, "gates": ["x"], "target": [0, 1], "threshold": 1.0}
    env = gym.make_vec("AdvRL/QuantumGate-v0", 1, **kwargs)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.array([0]))
    single = gym.make("AdvRL/QuantumGate-v0", **kwargs)
    single.reset(seed=0)
    _, single_reward, single_terminated, _, _ = single.step(0)
    assert terminated[0] and single_terminated and info["is_success"][0]
    assert reward[0] == single_reward == 2.0  # fidelity 0 -> 1, plus the success bonus


def test_quantum_noise_on_every_step_and_success_at_reset() -> None:
    """noise_prob=1: every step draws its Pauli error, so only the instances that really step may
    draw; and a start already at the threshold is a success in the reset info."""
    native, sync = _pair(
        "AdvRL/QuantumGate-v0", {"noise_prob": 1.0, "max_episode_steps": 3}, None, AutoresetMode.NEXT_STEP
    )
    native.reset(seed=6)
    sync.reset(seed=6)
    native.action_space.seed(6)
    for t in range(10):
        actions = native.action_space.sample()
        result_n, result_s = native.step(actions), sync.step(actions)
        names = ("obs", "reward", "terminated", "truncated")
        for name, a, b in zip(names, result_n[:4], result_s[:4], strict=True):
            _assert_same(a, b, f"step {t} {name}")
    kwargs = {"n_qubits": 1, "target": [1, 0], "threshold": 1.0}
    _, info = gym.make_vec("AdvRL/QuantumGate-v0", 2, **kwargs).reset(seed=0)
    _, single_info = gym.make("AdvRL/QuantumGate-v0", **kwargs).reset(seed=0)
    assert info["is_success"].tolist() == [True, True] and single_info["is_success"]


def test_four_rooms_cell_size_and_three_qubit_random_targets() -> None:
    native = gym.make_vec("AdvRL/FourRooms-v0", 2, obs_mode="rgb", cell_px=2)
    obs, _ = native.reset(seed=3)
    np.testing.assert_array_equal(
        obs[1], gym.make("AdvRL/FourRooms-v0", obs_mode="rgb", cell_px=2).reset(seed=4)[0]
    )
    assert obs.shape == (2, 26, 26, 3)
    kwargs = {"n_qubits": 3, "target": "random"}
    obs, _ = gym.make_vec("AdvRL/QuantumGate-v0", 2, **kwargs).reset(seed=5)
    np.testing.assert_array_equal(obs[1], gym.make("AdvRL/QuantumGate-v0", **kwargs).reset(seed=6)[0])


def test_block_stream_keeps_the_dtype_of_its_draws() -> None:
    rngs, twin = [np.random.default_rng(12)], np.random.default_rng(12)
    stream = BlockStream(rngs, lambda rng, k: rng.integers(2**40, size=k), (), dtype=np.int64, block=4)
    for _ in range(6):
        got = stream.take()
        assert got.dtype == np.int64 and int(got[0]) == int(twin.integers(2**40))


def test_slip_is_checked_by_name_and_range() -> None:
    with pytest.raises(ValueError, match=r"^slip must be"):
        gym.make_vec("AdvRL/GridWorld-v0", 2, slip=1.5)
    with pytest.raises(ValueError, match=r"^slip\[0\] must be"):
        gym.make_vec("AdvRL/FourRooms-v0", 2, slip=[-0.1, 0.2])


# ---------------------------------------------------------------------- review of mutation survivors
_PCG64_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341


def _next_word_is(rng: np.random.Generator, word: int) -> None:
    """Put PCG64 generator ``rng`` in the state whose next 64-bit output is ``word`` (no cached
    half): PCG64 steps ``s <- s * multiplier + inc`` (mod 2**128), then outputs
    ``rotr64(hi ^ lo, hi >> 58)``; the stepped state below has ``hi >> 58 == 0`` (no rotation)."""
    state = rng.bit_generator.state
    inc, hi = state["state"]["inc"], 12345
    stepped = (hi << 64) | (hi ^ word)
    state["state"]["state"] = ((stepped - inc) * pow(_PCG64_MULTIPLIER, -1, 2**128)) % 2**128
    state["has_uint32"] = state["uinteger"] = 0
    rng.bit_generator.state = state


def test_crafted_generator_state_gives_the_chosen_word() -> None:
    rng = np.random.default_rng(0)
    _next_word_is(rng, 2**63 + 5)
    assert int(rng.bit_generator.random_raw()) == 2**63 + 5


def test_num_envs_error_names_it_exactly() -> None:
    with pytest.raises(ValueError, match=r"^num_envs must be an integer in \[1, inf\), got 0$"):
        gym.make_vec("AdvRL/GridWorld-v0", 0, vectorization_mode="vector_entry_point")


def test_a_transposed_box_batch_is_refused_not_reshaped() -> None:
    """A ``(2, 3)`` batch for three instances of a ``(2,)`` space has the right size, but
    reshaping it would give instance 0 the first action component of instances 0 and 1."""
    space = gym.spaces.Box(-5.0, 5.0, (2,), np.float32)
    actions = np.array([[1.0, 2.0], [3.0, 4.0], [-1.0, -2.0]])
    with pytest.raises(ValueError, match=r"^actions must have shape \(3, 2\), got shape \(2, 3\)$"):
        batched_box_actions(actions.T, space, 3)
    with pytest.raises(ValueError, match=r"^actions must have shape \(3, 1\), got shape \(1, 3\)$"):
        batched_box_actions([[0.5, 1.0, 1.5]], gym.spaces.Box(-2.0, 2.0, (1,), np.float32), 3)
    # fewer axes, row-major: instance i's components are numbers 2i and 2i + 1
    assert batched_box_actions(actions.ravel(), space, 3).tolist() == actions.tolist()
    env = gym.make_vec("AdvRL/NonlinearRegulator-v0", 3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"^actions must have shape \(3, 2\), got shape \(2, 3\)$"):
        env.step(np.zeros((2, 3)))


def test_one_step_limit_and_one_drawn_instance_are_allowed() -> None:
    env = gym.make_vec("AdvRL/Pendulum-v0", 3, max_episode_steps=1, render_mode="rgb_array", render_envs=1)
    env.reset(seed=0)
    assert env.unwrapped.max_episode_steps == 1 and env.unwrapped.render_envs == 1
    flags = [env.step(np.zeros((3, 1)))[3].all() for _ in range(4)]
    assert flags == [True, False, True, False]  # the step after a truncation resets
    frames = env.render()
    single = PendulumEnv(render_mode="rgb_array")
    single.reset(seed=0)
    assert len(frames) == 1 and frames[0].shape == single.render().shape


class _BareVectorEnv(AdvRLVectorEnv):
    """A subclass whose metadata names no render modes."""


def test_a_subclass_without_render_modes_refuses_every_render_mode() -> None:
    box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    with pytest.raises(ValueError, match=r"^render_mode must be one of \(\), got 'rgb_array'$"):
        _BareVectorEnv(2, box, box, None, "rgb_array", "NextStep", None)
    assert _BareVectorEnv(2, box, box, None, None, "NextStep", None).render_mode is None


def test_seed_zero_in_a_seed_list() -> None:
    env = gym.make_vec("AdvRL/FourRooms-v0", 2)
    obs, _ = env.reset(seed=[0, 3])
    assert env.unwrapped.np_random_seeds == [0, 3]
    single = gym.make("AdvRL/FourRooms-v0")
    assert obs.tolist() == [single.reset(seed=0)[0], single.reset(seed=3)[0]]


def test_reset_after_a_same_step_autoreset() -> None:
    env = gym.make_vec("AdvRL/GridWorld-v0", 2, autoreset_mode="SameStep", max_episode_steps=1)
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(np.array([1, 2]))  # right, down: both truncated and reset
    assert truncated.tolist() == [True, True] and info["final_obs"][0].tolist() == [0.0, 1.0]
    obs, _ = env.reset(seed=1, options={"reset_mask": np.array([True, False])})
    assert obs.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    _, _, _, truncated, info = env.step(np.array([2, 1]))
    assert truncated.tolist() == [True, True] and info["final_obs"][1].tolist() == [0.0, 1.0]


def test_nested_infos_merged_twice_keep_both_rows() -> None:
    infos = add_info({}, {"n": {"b": np.array([1.5])}}, np.array([0]), 3)
    add_info(infos, {"n": {"b": np.array([2.5]), "c": np.array([7])}}, np.array([2]), 3)
    assert infos["n"]["b"].tolist() == [1.5, 0.0, 2.5] and infos["n"]["_b"].tolist() == [True, False, True]
    assert infos["n"]["c"].tolist() == [0, 0, 7] and infos["n"]["_c"].tolist() == [False, False, True]
    assert infos["_n"].tolist() == [True, False, True]


def test_full_rows_entries_keep_their_dtype() -> None:
    for values in (np.array([1, 2, 3]), np.array([True, True, False]), np.array([0.5, 1.5, 2.5], np.float32)):
        infos = add_info({}, {"f": FullRows(values)}, np.array([0, 2]), 3)
        assert infos["f"].dtype == values.dtype
        assert infos["f"].tolist() == [values[0], values.dtype.type(0), values[2]]


def test_raw_stream_draws_only_from_the_generators_of_its_rows() -> None:
    """Drawing for instance 0 neither reads instance 1's generator nor needs it to exist yet."""
    rngs, twin = [np.random.default_rng(1), None], np.random.default_rng(1)
    stream = RawStream(rngs, block=4, keep_states=False)
    for _ in range(6):
        assert stream.random(np.array([0]))[0] == twin.random()
    assert stream.integers(np.array([0]), 5)[0] == twin.integers(5)
    rngs[1], other = np.random.default_rng(2), np.random.default_rng(2)
    for _ in range(4):  # instance 1's whole block
        assert stream.random(np.array([1]))[0] == other.random()
    used_up = rngs[1].bit_generator.state
    for _ in range(6):  # instance 0 refills its block; instance 1's empty one waits for its next draw
        assert stream.random(np.array([0]))[0] == twin.random()
    assert rngs[1].bit_generator.state == used_up
    assert stream.random(np.array([1]))[0] == other.random()


def test_raw_stream_integers_reject_exactly_below_numpys_threshold() -> None:
    """Lemire's method for n = 7: a 32-bit draw x gives m = 7 x; its low half below
    (2**32 - 7) % 7 = 4 is rejected, from 4 on it is accepted with the value m >> 32. The first
    word's low half gives a low half of 3 (rejected), its upper half one of exactly 4 (accepted)."""
    n, inverse = 7, pow(7, -1, 2**32)
    assert (2**32 - n) % n == 4
    rejected, accepted = 3 * inverse % 2**32, 4 * inverse % 2**32
    rng = np.random.default_rng(0)
    _next_word_is(rng, (accepted << 32) | rejected)
    twin = copy.deepcopy(rng)
    stream = RawStream([rng], block=4, keep_states=False)
    first = stream.integers(np.array([0]), n)
    assert first.tolist() == [accepted * n >> 32] == [twin.integers(n)]
    assert accepted * n >> 32 != rejected * n >> 32
    for _ in range(6):
        assert stream.integers(np.array([0]), n)[0] == twin.integers(n)


def test_grid_world_random_starts_skip_the_goal() -> None:
    """Three free cells, the goal first: the start is one of the other two (cells 1 and 2), drawn as
    the single env draws it (integers(2) over the free cells without the goal)."""
    kwargs = {"size": 2, "walls": [(1, 1)], "start": None, "goal": (0, 0), "obs_mode": "index"}
    env = gym.make_vec("AdvRL/GridWorld-v0", 16, **kwargs)
    obs, info = env.reset(seed=0)
    single = gym.make("AdvRL/GridWorld-v0", **kwargs)
    assert obs.tolist() == [single.reset(seed=s)[0] for s in range(16)]
    assert set(obs.tolist()) == {1, 2}
    picks = [int(np.random.default_rng(s).integers(2)) for s in range(16)]
    assert obs.tolist() == [1 + k for k in picks]
    assert info["position"].tolist() == [[[0, 1], [1, 0]][k] for k in picks]


@pytest.mark.parametrize("slip", [[0.5], [0.5, 0.0]])
def test_a_uniform_draw_equal_to_slip_does_not_slip(slip: list[float]) -> None:
    """random() < slip, as the single env: a draw of exactly 0.5 (the word 2**63) keeps the move.
    One instance that may slip steps on the every-instance path; with a second that may not, on
    the path of the instances that may slip."""
    env = gym.make_vec("AdvRL/GridWorld-v0", len(slip), slip=slip).unwrapped
    env.reset(seed=0)
    single = gym.make("AdvRL/GridWorld-v0", slip=0.5).unwrapped
    single.reset(seed=0)
    for rng in (env._rngs[0], single.np_random):
        _next_word_is(rng, 2**63)
    _, _, _, _, info = env.step(np.ones(len(slip), dtype=np.int64))  # right
    assert single.step(1)[4]["position"] == (0, 1)
    assert info["position"][0].tolist() == [0, 1]


def test_a_uniform_draw_equal_to_noise_prob_gives_no_pauli_error() -> None:
    kwargs = {"n_qubits": 1, "target": [0, 1], "noise_prob": 0.5}
    env = gym.make_vec("AdvRL/QuantumGate-v0", 1, **kwargs).unwrapped
    env.reset(seed=0)
    single = gym.make("AdvRL/QuantumGate-v0", **kwargs).unwrapped
    single.reset(seed=0)
    for rng in (env._rngs[0], single.np_random):
        _next_word_is(rng, 2**63)
    obs, _, _, _, info = env.step(np.array([0]))
    single_obs, _, _, _, single_info = single.step(0)
    assert info["error"][0] is None and single_info["error"] is None
    np.testing.assert_array_equal(obs[0], single_obs)


def test_regulator_state_exactly_on_norm_three_is_not_terminal() -> None:
    env = gym.make_vec("AdvRL/NonlinearRegulator-v0", 1, process_noise=0.0).unwrapped
    env.reset(seed=0)
    n4 = copy.deepcopy(env._rngs[0]).normal(size=5)[4]
    env.state[:, 0] = [3.0, 0.0, 0.0, -0.01 * n4 / 0.95]  # s3' = 0.95 s3 + 0.01 n4 = 0 (to rounding)
    _, _, terminated, _, _ = env.step(np.zeros((1, 2)))
    assert np.sqrt(np.sum(env.state[:, 0] ** 2)) == 3.0 and terminated.tolist() == [False]
