"""Native vector envs (``gym_advrl.envs.vector``) against the single envs they vectorize.

Parity: ``gym.make_vec(id, n)`` and a ``SyncVectorEnv`` of ``n`` single envs, reset with the
same seeds and given the same actions for several hundred steps across many episode ends, must
give the same observations, rewards, terminations and truncations. Terminations and
truncations are compared exactly, observations and rewards exactly for integer/uint8 spaces
and to ``rtol=1e-6, atol=1e-6`` for float ones: the single envs square NumPy *scalars*, which
NumPy computes with the C library's ``pow`` (not always the correctly rounded ``x * x`` that the
array code computes), so a float64 result may differ in its last bit.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import gym_advrl
from gym_advrl.envs.vector._streams import BlockStream, RawStream

FLOAT_TOL = {"rtol": 1e-6, "atol": 1e-6}
#: Single-env info keys the native env leaves out (per-step Python objects per instance; the
#: native env offers them through methods, tested below).
#: "TimeLimit.truncated" is not the env's: importing rl_zoo3 (rl_zoo3.gym_patches, as other tests
#: in the same process do) patches Gymnasium's TimeLimit to add it to every single env's info.
OMITTED_INFO = {"gates", "target_circuit", "TimeLimit.truncated"}

#: (id, shared kwargs, per-instance kwargs as a function of the instance index or None, steps)
CASES: list[tuple[str, dict[str, Any], Any, int]] = [
    ("AdvRL/Pendulum-v0", {}, None, 450),
    ("AdvRL/Pendulum-v0", {"damping": 0.3}, lambda i: {"m": 0.5 + 0.25 * i, "g": 8.0 + i}, 450),
    ("AdvRL/ContinuousCartPole-v0", {}, None, 400),
    ("AdvRL/ContinuousCartPole-v0", {}, lambda i: {"length": 0.3 + 0.1 * i, "force_mag": 5.0 + i}, 400),
    ("AdvRL/NonlinearRegulator-v0", {}, None, 500),
    ("AdvRL/GridWorld-v0", {"size": 4}, None, 400),
    (
        "AdvRL/GridWorld-v0",
        {"size": 4, "obs_mode": "index", "start": None},
        lambda i: {"slip": 0.15 * i},
        400,
    ),
    (
        "AdvRL/GridWorld-v0",
        {"size": (3, 5), "obs_mode": "rgb", "cell_px": 2, "walls": [(1, 1)], "slip": 0.2},
        None,
        300,
    ),
    ("AdvRL/FourRooms-v0", {}, None, 1200),
    ("AdvRL/SequenceMemory-v0", {}, None, 100),
    ("AdvRL/SequenceMemory-v0", {"distractors": True, "n_symbols": 3, "delay": 2}, None, 100),
    ("AdvRL/SequenceTracking-v0", {}, None, 160),
    ("AdvRL/CausalSCM-v0", {}, None, 120),
    ("AdvRL/QuantumGate-v0", {}, None, 200),
    ("AdvRL/QuantumGate-v0", {"target": "random", "noise_prob": 0.3}, None, 200),
    ("AdvRL/QuantumGate-v0", {"n_qubits": 3, "threshold": 0.6}, None, 200),
    ("AdvRL/CausalSCM-v0", {"action_type": "do", "confounded": True}, None, 120),
    ("AdvRL/CausalSCM-v0", {"graph": "random", "n_vars": 5, "edge_prob": 0.6, "graph_seed": 3}, None, 60),
    ("AdvRL/SequenceTracking-v0", {"episode_length": 7}, None, 60),
    ("AdvRL/FourRooms-v0", {"obs_mode": "coords", "goal": (2, 2)}, None, 600),
    ("AdvRL/NonlinearRegulator-v0", {}, lambda i: {"process_noise": 0.5 * i}, 300),
]
NUM_ENVS = 6


def _per_instance_kwargs(shared: dict, per_instance: Any) -> tuple[list[dict], dict]:
    singles = [dict(shared, **(per_instance(i) if per_instance else {})) for i in range(NUM_ENVS)]
    vector = dict(shared)
    if per_instance:
        for key in per_instance(0):
            vector[key] = np.array([kw[key] for kw in singles])
    return singles, vector


def _gymnasium_time_limit() -> type:
    """Gymnasium's own TimeLimit, also when rl_zoo3.gym_patches has replaced it (other tests in the
    same process import rl_zoo3): the patched one reports no truncation when the time limit and a
    termination fall on the same step, which the native envs, like Gymnasium, do report."""
    cls = gym.wrappers.TimeLimit
    while cls.__name__ != "TimeLimit":
        cls = cls.__bases__[0]
    return cls


def _single(env_id: str, kwargs: dict) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with Gymnasium's TimeLimit outermost."""
    env = gym.make(env_id, **kwargs)
    if isinstance(env, gym.wrappers.TimeLimit) and type(env) is not _gymnasium_time_limit():
        env = _gymnasium_time_limit()(env.env, env._max_episode_steps)
    return env


def _pair(
    env_id: str, shared: dict, per_instance: Any, mode: AutoresetMode
) -> tuple[gym.vector.VectorEnv, SyncVectorEnv]:
    singles, vector_kwargs = _per_instance_kwargs(shared, per_instance)
    native = gym.make_vec(
        env_id, NUM_ENVS, vectorization_mode="vector_entry_point", autoreset_mode=mode, **vector_kwargs
    )
    sync = SyncVectorEnv([lambda kw=kw: _single(env_id, kw) for kw in singles], autoreset_mode=mode)
    return native, sync


def _assert_same(native_value: np.ndarray, sync_value: np.ndarray, what: str) -> None:
    native_value, sync_value = np.asarray(native_value), np.asarray(sync_value)
    assert native_value.shape == sync_value.shape, what
    assert native_value.dtype == sync_value.dtype, f"{what}: dtype {native_value.dtype} != {sync_value.dtype}"
    if native_value.dtype.kind == "f":
        np.testing.assert_allclose(native_value, sync_value, err_msg=what, **FLOAT_TOL)
    else:
        np.testing.assert_array_equal(native_value, sync_value, err_msg=what)


def _assert_same_info(native_info: dict, sync_info: dict, what: str) -> None:
    expected = {k for k in sync_info if k.lstrip("_") not in OMITTED_INFO}
    assert set(native_info) == expected, f"{what}: keys {set(native_info)} != {expected}"
    for key, value in sync_info.items():
        if key.lstrip("_") in OMITTED_INFO:
            continue
        if isinstance(value, dict):
            _assert_same_info(native_info[key], value, f"{what}[{key}]")
        elif key == "final_obs":
            for i, obs in enumerate(value):
                if obs is not None:
                    _assert_same(native_info[key][i], obs, f"{what}[final_obs][{i}]")
        elif value.dtype == object:  # tuples in the single env's info: the native env reports arrays
            mask = sync_info[f"_{key}"] if not key.startswith("_") else np.ones(len(value), bool)
            _assert_same(
                native_info[key][mask], np.array([np.asarray(v) for v in value[mask]]), f"{what}[{key}]"
            )
        else:
            _assert_same(native_info[key], value, f"{what}[{key}]")


def run_parity(native: gym.vector.VectorEnv, sync: SyncVectorEnv, steps: int, seed: int = 7) -> int:
    """Step both with the same random actions; return how many episodes ended."""
    obs_n, info_n = native.reset(seed=seed)
    obs_s, info_s = sync.reset(seed=seed)
    _assert_same(obs_n, obs_s, "reset obs")
    _assert_same_info(info_n, info_s, "reset info")
    native.action_space.seed(seed)
    ends = 0
    for t in range(steps):
        actions = native.action_space.sample()
        result_n, result_s = native.step(actions), sync.step(actions)
        for name, a, b in zip(
            ("obs", "reward", "terminated", "truncated"), result_n[:4], result_s[:4], strict=True
        ):
            _assert_same(a, b, f"step {t} {name}")
        _assert_same_info(result_n[4], result_s[4], f"step {t} info")
        ends += int(np.sum(result_n[2] | result_n[3]))
    return ends


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize(("env_id", "shared", "per_instance", "steps"), CASES)
def test_parity_with_single_envs(
    env_id: str, shared: dict, per_instance: Any, steps: int, mode: AutoresetMode
) -> None:
    native, sync = _pair(env_id, shared, per_instance, mode)
    ends = run_parity(native, sync, steps)
    assert ends >= NUM_ENVS, "the run must cross episode ends (autoreset) in every instance on average"


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_make_vec_defaults_to_native_and_batches_spaces(env_id: str) -> None:
    env = gym.make_vec(env_id, 3)
    single = gym.make(env_id)
    assert isinstance(env.unwrapped, gym_advrl.envs.vector.AdvRLVectorEnv)
    assert env.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert env.single_observation_space == single.observation_space
    assert env.single_action_space == single.action_space
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(5):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert reward.shape == terminated.shape == truncated.shape == (3,)
        assert reward.dtype == np.float64 and terminated.dtype == truncated.dtype == np.bool_


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_seeding_is_per_instance_and_repeatable(env_id: str) -> None:
    env = gym.make_vec(env_id, 4)
    first, _ = env.reset(seed=[11, 12, 11, None])
    again, _ = env.reset(seed=[11, 12, 11, None])
    _assert_same(first[0], first[2], "same seed, same start")
    _assert_same(first[:3], again[:3], "reseeding repeats")
    single_obs, _ = gym.make(env_id).reset(seed=12)
    _assert_same(first[1], single_obs, "instance 1 is the single env with seed 12")


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_reset_mask_resets_only_the_chosen_instances(env_id: str) -> None:
    native, sync = _pair(env_id, {}, None, AutoresetMode.DISABLED)
    native.reset(seed=3)
    sync.reset(seed=3)
    native.action_space.seed(0)
    done = np.zeros(NUM_ENVS, dtype=bool)
    for _ in range(4):
        actions = native.action_space.sample()
        _, _, terminated, truncated, _ = native.step(actions)
        sync.step(actions)
        done = terminated | truncated
        if done.any():  # Disabled: finished instances must be reset before the next step
            break
    mask = (np.arange(NUM_ENVS) % 2 == 0) | done
    obs_n, info_n = native.reset(seed=100, options={"reset_mask": mask})
    obs_s, info_s = sync.reset(seed=100, options={"reset_mask": mask.copy()})
    _assert_same(obs_n, obs_s, "partial reset obs")
    _assert_same_info(info_n, info_s, "partial reset info")


def test_disabled_autoreset_refuses_to_step_finished_instances() -> None:
    env = gym.make_vec("AdvRL/Pendulum-v0", 2, autoreset_mode="Disabled", max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(3):
        _, _, _, truncated, _ = env.step(np.zeros((2, 1), dtype=np.float32))
    assert truncated.all()
    with pytest.raises(ValueError, match="reset_mask"):
        env.step(np.zeros((2, 1), dtype=np.float32))
    env.reset(options={"reset_mask": np.array([True, True])})
    env.step(np.zeros((2, 1), dtype=np.float32))


@pytest.mark.parametrize("num_envs", [0, -3, 2.5, "4", True, None])
@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_bad_num_envs_raises_value_error(env_id: str, num_envs: Any) -> None:
    with pytest.raises(ValueError, match="num_envs"):
        gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize(
    ("env_id", "argument"),
    [
        ("AdvRL/Pendulum-v0", "m"),
        ("AdvRL/Pendulum-v0", "max_torque"),
        ("AdvRL/ContinuousCartPole-v0", "length"),
    ],
)
def test_per_instance_arguments_are_checked(env_id: str, argument: str) -> None:
    with pytest.raises(ValueError, match=f"{argument}.*num_envs=3"):
        gym.make_vec(env_id, 3, **{argument: [1.0, 0.5]})
    with pytest.raises(ValueError, match=rf"{argument}\[1\]"):
        gym.make_vec(env_id, 3, **{argument: [1.0, -1.0, 0.5]})


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_bad_actions_and_options_raise_value_error(env_id: str) -> None:
    env = gym.make_vec(env_id, 2)
    env.reset(seed=0)
    bad = np.zeros(env.action_space.shape)
    bad.flat[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env.step(bad)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((5, 7)))
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"nope": 1})
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="autoreset_mode"):
        gym.make_vec(env_id, 2, autoreset_mode="sometimes")


def test_step_before_reset_raises() -> None:
    env = gym.make_vec("AdvRL/Pendulum-v0", 2)
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)$"):
        env.step(np.zeros((2, 1), dtype=np.float32))


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_render_draws_the_single_env_frames(env_id: str) -> None:
    env = gym.make_vec(env_id, 3, render_mode="rgb_array", render_envs=2)
    env.reset(seed=5)
    env.step(env.action_space.sample())
    frames = env.render()
    assert len(frames) == 2
    single = gym.make(env_id, render_mode="rgb_array")
    single.reset(seed=6)
    native_state = env.unwrapped
    native_state._painter_state(single.unwrapped, 1)
    np.testing.assert_array_equal(frames[1], single.render())
    assert frames[0].dtype == np.uint8 and frames[0].ndim == 3


# ---------------------------------------------------------------------- random streams
def test_block_stream_reproduces_step_by_step_draws_across_syncs() -> None:
    rngs = [np.random.default_rng(s) for s in (1, 2, 3)]
    twins = [np.random.default_rng(s) for s in (1, 2, 3)]
    stream = BlockStream(rngs, lambda rng, k: rng.normal(size=(k, 2)), (2,), block=5)
    for t in range(23):
        rows = np.array([0, 2]) if t % 3 else None
        got = stream.take(rows)
        for k, i in enumerate([0, 1, 2] if rows is None else rows):
            np.testing.assert_array_equal(got[k], twins[i].normal(size=2))
        if t % 7 == 6:  # a reset: the generators must be where the twins are
            stream.sync(np.array([0, 1, 2]))
            for rng, twin in zip(rngs, twins, strict=True):
                assert rng.uniform() == twin.uniform()


def test_raw_stream_reproduces_random_and_integers() -> None:
    rngs = [np.random.default_rng(s) for s in range(4)]
    twins = [np.random.default_rng(s) for s in range(4)]
    stream = RawStream(rngs, block=7)
    rows = np.arange(4)
    for t in range(200):
        u = stream.random(rows)
        assert u.tolist() == [twin.random() for twin in twins]
        slipped = rows[u < 0.5]
        if len(slipped):
            n = (3, 4, 15, 1000)[t % 4]
            assert stream.integers(slipped, n).tolist() == [int(twins[i].integers(n)) for i in slipped]
        if t % 13 == 12:
            stream.sync(rows)
            assert [int(r.integers(5)) for r in rngs] == [int(twin.integers(5)) for twin in twins]
        if t % 29 == 28:  # reseeding (reset(seed=...)): the old generators' cached halves must go
            stream.forget(rows)
            for i in range(4):
                rngs[i], twins[i] = np.random.default_rng(100 + t + i), np.random.default_rng(100 + t + i)


def test_goal_option_moves_goals_per_instance_and_persists() -> None:
    native, sync = _pair("AdvRL/FourRooms-v0", {"obs_mode": "coords"}, None, AutoresetMode.NEXT_STEP)
    goals = [(1, 1), (1, 2), (2, 1), (9, 9), (10, 10), (3, 3)]
    _, info = native.reset(seed=1, options={"goal": goals})
    np.testing.assert_array_equal(info["goal"], np.array(goals))
    for i, env in enumerate(sync.envs):
        env.reset(seed=1 + i, options={"goal": goals[i]})
    sync.reset()  # goals persist across resets without options, in both
    native.reset()
    # Same generators from here on: the runs must agree step by step.
    native.action_space.seed(2)
    for t in range(300):
        actions = native.action_space.sample()
        for name, a, b in zip(
            ("obs", "reward", "terminated"), native.step(actions)[:3], sync.step(actions)[:3], strict=True
        ):
            _assert_same(a, b, f"step {t} {name}")
    with pytest.raises(ValueError, match="goal"):
        native.reset(options={"goal": (0, 0)})  # a wall


def test_quantum_circuits_and_tensor_view_match_the_single_envs() -> None:
    kwargs = {"target": "random", "noise_prob": 0.3}
    native = gym.make_vec("AdvRL/QuantumGate-v0", 3, **kwargs).unwrapped
    singles = [gym.make("AdvRL/QuantumGate-v0", **kwargs) for _ in range(3)]
    native.reset(seed=4)
    for i, env in enumerate(singles):
        env.reset(seed=4 + i)
    rng = np.random.default_rng(0)
    for _ in range(3):
        actions = rng.integers(native.single_action_space.n, size=3)
        native.step(actions)
        infos = [env.step(int(a))[4] for env, a in zip(singles, actions, strict=True)]
    for i, env in enumerate(singles):
        assert native.gate_labels(i) == tuple(infos[i]["gates"])
        assert native.to_qasm(i, include_noise=True) == env.unwrapped.to_qasm(include_noise=True)
        assert native.target_circuit(i) == infos[i]["target_circuit"]
        np.testing.assert_array_equal(native.tensor_states[i].reshape(-1), env.unwrapped.state)
    assert native.tensor_states.shape == (3, 2, 2)


@pytest.mark.parametrize(
    ("env_id", "key", "values"),
    [("AdvRL/Pendulum-v0", "m", [0.5, 2.0, 1.3]), ("AdvRL/ContinuousCartPole-v0", "length", [0.3, 0.9, 0.5])],
)
def test_physics_option_lasts_one_episode_per_instance(env_id: str, key: str, values: list[float]) -> None:
    native = gym.make_vec(env_id, 3, max_episode_steps=40)
    singles = [gym.make(env_id, max_episode_steps=40) for _ in range(3)]
    obs, info = native.reset(seed=9, options={"physics": {key: values}})
    np.testing.assert_array_equal(info["physics"][key], values)
    for i, env in enumerate(singles):
        single_obs, _ = env.reset(seed=9 + i, options={"physics": {key: values[i]}})
        np.testing.assert_array_equal(obs[i], single_obs)
    rng = np.random.default_rng(1)
    for t in range(120):  # several autoresets: the physics go back to the constructor's
        actions = rng.uniform(-1, 1, size=(3, 1)).astype(np.float32)
        obs, reward, terminated, truncated, _ = native.step(actions)
        for i, env in enumerate(singles):
            if native.unwrapped._elapsed[i] == 0 and t > 0:  # autoreset this step
                single_obs, _ = env.reset()
            else:
                single_obs, single_reward, *_ = env.step(actions[i])
                assert reward[i] == pytest.approx(single_reward, rel=1e-9), f"step {t} instance {i}"
            np.testing.assert_allclose(obs[i], single_obs, **FLOAT_TOL)


@pytest.mark.parametrize("env_id", sorted(gym_advrl.VECTOR_ENTRY_POINTS))
def test_returned_arrays_are_not_reused(env_id: str) -> None:
    """As Gymnasium's env checker asks of single envs: a later step or reset never changes what an
    earlier one returned."""
    env = gym.make_vec(env_id, 5, max_episode_steps=3)
    first, _ = env.reset(seed=0)
    kept = [np.array(first, copy=True)]
    returned = [first]
    env.action_space.seed(0)
    for _ in range(7):  # crosses autoresets
        result = env.step(env.action_space.sample())
        returned.append(result)
        kept.append(tuple(np.array(part, copy=True) for part in result[:4]))
    env.reset(seed=1)
    np.testing.assert_array_equal(returned[0], kept[0])
    for result, copy in zip(returned[1:], kept[1:], strict=True):
        for part, saved in zip(result[:4], copy, strict=True):
            np.testing.assert_array_equal(part, saved)


def test_raw_stream_all_rows_path_matches_the_row_path() -> None:
    streams = [RawStream([np.random.default_rng(s) for s in range(3)], block=5) for _ in range(2)]
    for _ in range(12):
        assert streams[0].random(None).tolist() == streams[1].random(np.arange(3)).tolist()


def test_block_stream_untake_gives_draws_back() -> None:
    rngs, twin = [np.random.default_rng(5)], np.random.default_rng(5)
    stream = BlockStream(rngs, lambda rng, k: rng.normal(size=(k, 1)), (1,), block=4)
    for t in range(10):
        got = stream.take()[0, 0]
        if t % 3 == 2:  # not used: the same number comes again, the twin does not draw
            stream.untake(np.array([0]))
            assert stream.take()[0, 0] == got
        assert got == twin.normal()
    stream.sync(np.array([0]))  # the generator is where the twin is
    assert rngs[0].uniform() == twin.uniform()
