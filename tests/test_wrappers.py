"""Tests of gym_advrl.wrappers: API contracts around every applicable env, errors, and behaviour."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from gym_advrl.envs import ContinuousCartPoleEnv, PendulumEnv
from gym_advrl.wrappers import (
    ActionRepeat,
    Curriculum,
    DomainRandomization,
    GoalSchedule,
    MaskObservation,
    ObservationNoise,
    RandomShift,
)
from tests.conftest import ADVRL_IDS

PENDULUM_RANGES = {"m": (0.5, 2.0), "l": (0.5, 1.5)}


def _obs_space(env_id: str) -> spaces.Space:
    env = gym.make(env_id)
    space = env.observation_space
    env.close()
    return space


FLOAT_BOX_IDS = [
    i for i in ADVRL_IDS if isinstance(s := _obs_space(i), spaces.Box) and np.issubdtype(s.dtype, np.floating)
]
VECTOR_BOX_IDS = [i for i in FLOAT_BOX_IDS if len(_obs_space(i).shape) == 1 and _obs_space(i).shape[0] >= 2]

# (name, factory): every wrapper around every env it applies to.
CASES: list[tuple[str, Callable[[], gym.Env]]] = [
    ("dr-pendulum", lambda: DomainRandomization(gym.make("AdvRL/Pendulum-v0"), PENDULUM_RANGES)),
    (
        "dr-cartpole",
        lambda: DomainRandomization(
            gym.make("AdvRL/ContinuousCartPole-v0"),
            {"masspole": (0.05, 0.5), "length": (0.3, 1.0), "gravity": 9.0},
            distribution="log-uniform",
        ),
    ),
    (
        "curriculum-gridworld",
        lambda: Curriculum(gym.make("AdvRL/GridWorld-v0"), [{"goal": (0, 2)}, {"goal": (4, 4)}]),
    ),
    (
        "curriculum-fourrooms",
        lambda: Curriculum(gym.make("AdvRL/FourRooms-v0"), [{"goal": (2, 2)}, {"goal": (7, 9)}]),
    ),
    (
        "curriculum-pendulum",
        lambda: Curriculum(gym.make("AdvRL/Pendulum-v0"), [{"x_init": 0.3}, {}], success_threshold=-150),
    ),
    (
        "curriculum-cartpole",
        lambda: Curriculum(
            gym.make("AdvRL/ContinuousCartPole-v0"),
            [{"physics": {"masspole": 0.05}}, {}],
            success_threshold=195,
        ),
    ),
    (
        "goals-gridworld",
        lambda: GoalSchedule(
            gym.make("AdvRL/GridWorld-v0"), [(1, 1), (3, 4)], switch_every=1, order="random"
        ),
    ),
    (
        "goals-gridworld-rgb",
        lambda: GoalSchedule(
            gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), [(1, 1), (3, 4)], switch_every=1, order="random"
        ),
    ),
    (
        "goals-fourrooms",
        lambda: GoalSchedule(
            gym.make("AdvRL/FourRooms-v0"), [(2, 2), (7, 9)], switch_every=1, order="random"
        ),
    ),
    ("shift-gridworld", lambda: RandomShift(gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), pad=4)),
    ("shift-fourrooms", lambda: RandomShift(gym.make("AdvRL/FourRooms-v0", obs_mode="rgb", slip=0.0), pad=3)),
    ("noise-gridworld-coords", lambda: ObservationNoise(gym.make("AdvRL/GridWorld-v0"), 0.2)),
]
CASES += [(f"noise-{i}", lambda i=i: ObservationNoise(gym.make(i), 0.05)) for i in FLOAT_BOX_IDS]
CASES += [(f"mask-{i}", lambda i=i: MaskObservation(gym.make(i), drop=[0])) for i in VECTOR_BOX_IDS]
GOAL_IDS = [i for i in ADVRL_IDS if hasattr(gym.make(i).unwrapped, "compute_reward")]
CASES += [(f"repeat-{i}", lambda i=i: ActionRepeat(gym.make(i), 3)) for i in ADVRL_IDS if i not in GOAL_IDS]
CASE_IDS = [name for name, _ in CASES]
FACTORIES = [factory for _, factory in CASES]


def rollout(env: gym.Env, seed: int, n_steps: int = 40) -> list:
    """Observations, rewards, flags and wrapper infos under seeded random actions, with resets."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    keys = ("physics", "curriculum_level", "goal", "goal_index")
    trajectory = [np.array(obs, copy=True), {k: info.get(k) for k in keys}]
    for _ in range(n_steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trajectory += [
            np.array(obs, copy=True),
            reward,
            terminated,
            truncated,
            {k: info.get(k) for k in keys},
        ]
        if terminated or truncated:
            obs, info = env.reset()
            trajectory += [np.array(obs, copy=True), {k: info.get(k) for k in keys}]
    return trajectory


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("make", FACTORIES, ids=CASE_IDS)
def test_check_env(make: Callable[[], gym.Env]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        # The checkers are meant for raw envs and say so for a wrapper; the others are the
        # deliberate env design choices allowed in tests/test_envs.py.
        warnings.filterwarnings(
            "ignore", message=".*different from the unwrapped version.*", category=UserWarning
        )
        warnings.filterwarnings("ignore", message=".*infinity.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*symmetric and normalized.*", category=UserWarning)
        gym_check_env(make())
        sb3_check_env(make(), warn=True)


@pytest.mark.parametrize("make", FACTORIES, ids=CASE_IDS)
def test_seeded_determinism_and_pickling(make: Callable[[], gym.Env]) -> None:
    first, second = rollout(make(), seed=5), rollout(make(), seed=5)
    assert same(first, second)
    env = make()
    env.reset(seed=9)
    env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    original, copied = env.step(action), clone.step(action)
    np.testing.assert_array_equal(original[0], copied[0])
    assert original[1:4] == copied[1:4]


def test_wrapper_draws_depend_on_the_seed() -> None:
    randomized = DomainRandomization(gym.make("AdvRL/Pendulum-v0"), PENDULUM_RANGES)
    assert randomized.reset(seed=5)[1]["physics"] != randomized.reset(seed=6)[1]["physics"]
    clean = gym.make("AdvRL/Pendulum-v0")
    noisy = ObservationNoise(gym.make("AdvRL/Pendulum-v0"), 0.1)
    noise = [noisy.reset(seed=s)[0] - clean.reset(seed=s)[0] for s in (5, 6)]
    assert not np.array_equal(*noise)
    schedules = [
        GoalSchedule(gym.make("AdvRL/GridWorld-v0"), [(1, 1), (3, 4)], switch_every=1, order="random")
        for _ in range(2)
    ]
    draws = [
        [env.reset(seed=s if i == 0 else None)[1]["goal_index"] for i in range(20)]
        for env, s in zip(schedules, (5, 6), strict=True)
    ]
    assert draws[0] != draws[1]


def test_wrappers_leave_the_env_random_stream_alone() -> None:
    # Paired comparisons: the same seed gives the same start states with and without a wrapper.
    plain = gym.make("AdvRL/Pendulum-v0")
    randomized = DomainRandomization(gym.make("AdvRL/Pendulum-v0"), PENDULUM_RANGES)
    for seed in range(3):
        np.testing.assert_array_equal(plain.reset(seed=seed)[0], randomized.reset(seed=seed)[0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: DomainRandomization(gym.make("AdvRL/GridWorld-v0"), {"m": (1, 2)}), "randomizable physics"),
        (lambda: Curriculum(gym.make("AdvRL/SequenceMemory-v0"), [{"goal": (1, 1)}]), "levels"),
        (lambda: GoalSchedule(gym.make("AdvRL/Pendulum-v0"), [(1, 1)]), "goals"),
        (lambda: ObservationNoise(gym.make("AdvRL/FourRooms-v0")), "floating-point Box"),
        (lambda: ObservationNoise(gym.make("AdvRL/GridWorld-v0", obs_mode="rgb")), "RandomShift"),
        (lambda: RandomShift(gym.make("AdvRL/Pendulum-v0")), "image Box"),
        (lambda: MaskObservation(gym.make("AdvRL/FourRooms-v0"), drop=[0]), "1-D Box"),
        (lambda: MaskObservation(gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), drop=[0]), "1-D Box"),
    ],
)
def test_inapplicable_envs_rejected(make: Callable[[], gym.Env], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ranges": {"mass": (1, 2)}}, "unknown physics parameter 'mass'"),
        ({"ranges": {"m": (2.0, 1.0)}}, "low <= high"),
        ({"ranges": {"m": (np.nan, 1.0)}}, "finite"),
        ({"ranges": {"m": (1.0, 2.0, 3.0)}}, r"\(low, high\) pair"),
        ({"ranges": {"m": (-1.0, 2.0)}}, "ranges: the environment rejects"),
        ({"ranges": {"l": 0.0}}, "ranges: the environment rejects"),
        ({"ranges": {}}, "non-empty dict"),
        ({"ranges": [("m", 1, 2)]}, "non-empty dict"),
        ({"ranges": {"damping": (0.0, 1.0)}, "distribution": "log-uniform"}, "low > 0"),
        ({"ranges": {"m": (1.0, 2.0)}, "distribution": "normal"}, "distribution must be one of"),
    ],
)
def test_domain_randomization_bad_ranges(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DomainRandomization(gym.make("AdvRL/Pendulum-v0"), **kwargs)


def test_domain_randomization_zero_damping_allowed_where_env_allows() -> None:
    env = DomainRandomization(gym.make("AdvRL/Pendulum-v0"), {"damping": (0.0, 0.5)})
    assert 0.0 <= env.reset(seed=0)[1]["physics"]["damping"] <= 0.5


@pytest.mark.parametrize(
    ("env_cls", "env_id", "ranges"),
    [
        (PendulumEnv, "AdvRL/Pendulum-v0", PENDULUM_RANGES),
        (
            ContinuousCartPoleEnv,
            "AdvRL/ContinuousCartPole-v0",
            {"masspole": (0.05, 0.5), "length": (0.25, 1.0)},
        ),
    ],
)
def test_sampled_physics_in_range_and_drive_the_dynamics(env_cls: type, env_id: str, ranges: dict) -> None:
    env = DomainRandomization(gym.make(env_id), ranges)
    defaults = env_cls().default_physics
    draws = {name: [] for name in ranges}
    for episode in range(60):
        _, info = env.reset(seed=0 if episode == 0 else None)
        for name, (low, high) in ranges.items():
            assert low <= info["physics"][name] <= high
            draws[name].append(info["physics"][name])
        assert {k: v for k, v in info["physics"].items() if k not in ranges} == {
            k: v for k, v in defaults.items() if k not in ranges
        }
        assert info["randomized_physics"] == {k: info["physics"][k] for k in ranges}
        # The step equals that of an env built with the sampled physics, from the same state.
        reference = env_cls(**info["physics"])
        reference.reset(seed=1)
        reference.state = np.array(env.unwrapped.state, copy=True)
        nominal = env_cls()
        nominal.reset(seed=1)
        nominal.state = np.array(env.unwrapped.state, copy=True)
        action = np.array([0.7], dtype=np.float32)
        obs, _, _, _, step_info = env.step(action)
        np.testing.assert_array_equal(obs, reference.step(action)[0])
        assert not np.array_equal(obs, nominal.step(action)[0]), "sampled physics must change the dynamics"
        assert step_info["physics"] == info["physics"]
    for name, (low, high) in ranges.items():
        # 60 uniform draws span most of the range (a failure here has probability < 1e-6).
        assert min(draws[name]) < low + 0.25 * (high - low) and max(draws[name]) > high - 0.25 * (high - low)


def test_explicit_physics_override_samples() -> None:
    env = DomainRandomization(gym.make("AdvRL/Pendulum-v0"), PENDULUM_RANGES)
    _, info = env.reset(seed=0, options={"physics": {"m": 3.0}})
    assert info["physics"]["m"] == 3.0 and 0.5 <= info["physics"]["l"] <= 1.5
    assert info["randomized_physics"]["m"] == 3.0


# ---------------------------------------------------------------------------------- curriculum
def adjacent_goal_env(**kwargs) -> Curriculum:
    """Three levels whose goals neighbour the start cell; a success takes one step, a failure times out."""
    base = gym.make("AdvRL/GridWorld-v0", max_episode_steps=2)
    return Curriculum(base, [{"goal": (0, 1)}, {"goal": (1, 0)}, {"goal": (1, 1)}], **kwargs)


def play(env: Curriculum, success: bool) -> dict:
    _, info = env.reset()
    toward_goal = {(0, 1): 1, (1, 0): 2, (1, 1): 1}[info["goal"]]
    while True:
        _, _, terminated, truncated, info = env.step(toward_goal if success else 0)
        if info["goal"] == (1, 1) and success and not terminated:
            toward_goal = 2
        if terminated or truncated:
            return info


def play_all(env: Curriculum, outcomes: str) -> list[int]:
    """Play episodes given as a string of 'S'/'F'; return the level after each."""
    levels = []
    for outcome in outcomes:
        info = play(env, outcome == "S")
        assert info["curriculum_success"] == (outcome == "S")
        levels.append(env.level)
    return levels


def test_curriculum_promotes_exactly_at_threshold() -> None:
    env = adjacent_goal_env()
    env.reset(seed=0)
    assert play_all(env, "FFSSSSSSS") == [0] * 9  # window not full yet
    assert play_all(env, "F") == [0]  # 7/10 < 0.8
    assert play_all(env, "S") == [1]  # sliding window: 8/10 >= 0.8 promotes
    assert len(env.outcomes) == 0 and env.reset()[1]["goal"] == (1, 0)
    assert play_all(env, "FSSSSSSSSS") == [1] * 9 + [2]  # 9/10
    assert play_all(env, "S" * 10) == [2] * 10  # no level above the last


def test_curriculum_demotes_exactly_at_threshold() -> None:
    env = adjacent_goal_env(start_level=2)
    env.reset(seed=0)
    assert play_all(env, "SSSSFFFFFF") == [2] * 10  # 4/10 > 0.3
    assert play_all(env, "F") == [1]  # 3/10 <= 0.3 demotes
    assert play_all(env, "SSSFFFFFFF") == [1] * 9 + [0]
    assert play_all(env, "F" * 10) == [0] * 10  # no level below the first


def test_curriculum_success_criteria_and_info() -> None:
    env = adjacent_goal_env(success_threshold=9.0, window=1)
    env.reset(seed=0)
    info = play(env, True)  # return 10 >= 9
    assert info["curriculum_success"] and info["curriculum_level"] == 0 and env.level == 1
    env = adjacent_goal_env(success_fn=lambda ret, terminated, info: not terminated, window=1)
    env.reset(seed=0)
    assert play(env, False)["curriculum_success"] and env.level == 1
    env.set_level(2)
    assert env.reset()[1] == {"position": (0, 0), "goal": (1, 1), "curriculum_level": 2}


def test_curriculum_composes_with_domain_randomization() -> None:
    levels = [{"physics": {"max_torque": 1.0, "m": 1.0}}, {}]
    env = DomainRandomization(Curriculum(gym.make("AdvRL/Pendulum-v0"), levels), {"m": (0.5, 0.6)})
    _, info = env.reset(seed=0)
    assert info["physics"]["max_torque"] == 1.0 and 0.5 <= info["physics"]["m"] <= 0.6
    assert info["curriculum_level"] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": []}, "non-empty list"),
        ({"levels": {"goal": (1, 1)}}, "non-empty list"),
        ({"levels": [{"goal": (1, 1)}, "hard"]}, r"levels\[1\]"),
        ({"levels": [{"goal": (9, 9)}]}, "levels of Curriculum around AdvRL/GridWorld-v0"),
        ({"levels": [{"goal": (1, 1)}], "promote_threshold": 1.5}, "promote_threshold"),
        (
            {"levels": [{"goal": (1, 1)}], "demote_threshold": 0.9},
            "demote_threshold must be < promote_threshold",
        ),
        ({"levels": [{"goal": (1, 1)}], "window": 0}, "window"),
        ({"levels": [{"goal": (1, 1)}], "start_level": 1}, "start_level"),
        ({"levels": [{"goal": (1, 1)}], "success_fn": 3}, "success_fn"),
    ],
)
def test_curriculum_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Curriculum(gym.make("AdvRL/GridWorld-v0"), **kwargs)


# ---------------------------------------------------------------------------------- goal schedule
@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("sequential", [(4, 4), (4, 4), (0, 4), (0, 4), (2, 0), (2, 0), (2, 0)]),
        ("cycle", [(4, 4), (4, 4), (0, 4), (0, 4), (2, 0), (2, 0), (4, 4)]),
    ],
)
def test_goal_schedule_moves_goal_when_stated(order: str, expected: list) -> None:
    env = GoalSchedule(gym.make("AdvRL/GridWorld-v0"), [(4, 4), (0, 4), (2, 0)], switch_every=2, order=order)
    goals = []
    for episode in range(7):
        _, info = env.reset(seed=0 if episode == 0 else None)
        assert env.unwrapped.goal == info["goal"] == env.goals[info["goal_index"]]
        goals.append(info["goal"])
    assert goals == expected
    # The goal really moved: walking to (2, 0) ends the episode only when it is the scheduled goal.
    assert [env.step(2)[2] for _ in range(2)] == [False, goals[-1] == (2, 0)]


def test_goal_schedule_random_manual_and_explicit() -> None:
    env = GoalSchedule(
        gym.make("AdvRL/FourRooms-v0"), [(2, 2), (7, 9), (10, 10)], switch_every=1, order="random"
    )
    goals = [env.reset(seed=3 if i == 0 else None)[1]["goal_index"] for i in range(30)]
    assert set(goals) == {0, 1, 2}
    env2 = GoalSchedule(
        gym.make("AdvRL/FourRooms-v0"), [(2, 2), (7, 9), (10, 10)], switch_every=1, order="random"
    )
    assert goals == [env2.reset(seed=3 if i == 0 else None)[1]["goal_index"] for i in range(30)]
    manual = GoalSchedule(gym.make("AdvRL/GridWorld-v0"), [(4, 4), (0, 4)])
    assert [manual.reset()[1]["goal"] for _ in range(3)] == [(4, 4)] * 3
    manual.set_goal(1)
    assert manual.reset()[1]["goal"] == (0, 4)
    _, info = manual.reset(options={"goal": (2, 2)})
    assert (info["goal"], info["goal_index"]) == ((2, 2), -1)
    assert manual.step(1)[4]["goal"] == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"goals": []}, "non-empty list"),
        ({"goals": [(1.5, 2)]}, r"goals\[0\]"),
        ({"goals": [(1, 2, 3)]}, r"goals\[0\]"),
        ({"goals": [(0, 6)]}, "rejects"),  # a wall of four-rooms
        ({"goals": [(20, 1)]}, "rejects"),
        ({"goals": [(2, 2)], "switch_every": 0}, "switch_every"),
        ({"goals": [(2, 2)], "order": "shuffle"}, "order must be one of"),
    ],
)
def test_goal_schedule_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GoalSchedule(gym.make("AdvRL/FourRooms-v0"), **kwargs)


# ---------------------------------------------------------------------------------- observation wrappers
def test_mask_observation_velocities_reduced_box() -> None:
    pendulum = MaskObservation(gym.make("AdvRL/Pendulum-v0"), drop=[2])
    assert pendulum.observation_space == spaces.Box(-1.0, 1.0, (2,), np.float32)
    cartpole = MaskObservation(gym.make("AdvRL/ContinuousCartPole-v0"), drop=[1, 3])
    full = gym.make("AdvRL/ContinuousCartPole-v0")
    theta = 12 * 2 * np.pi / 360 * 2
    expected = spaces.Box(
        np.array([-4.8, -theta], np.float32), np.array([4.8, theta], np.float32), dtype=np.float32
    )
    assert cartpole.observation_space == expected
    np.testing.assert_array_equal(cartpole.reset(seed=4)[0], full.reset(seed=4)[0][[0, 2]])
    action = np.array([0.5], dtype=np.float32)
    np.testing.assert_array_equal(cartpole.step(action)[0], full.step(action)[0][[0, 2]])
    reordered = MaskObservation(gym.make("AdvRL/ContinuousCartPole-v0"), keep=[2, -4])
    np.testing.assert_array_equal(reordered.reset(seed=4)[0], full.reset(seed=4)[0][[2, 0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"drop": [0], "keep": [1]}, "exactly one"),
        ({"drop": [0, 0]}, "repeat"),
        ({"drop": [3]}, r"drop\[0\]"),
        ({"keep": []}, "no observation dimension"),
        ({"drop": [0, 1, 2]}, "no observation"),
        ({"drop": "velocity"}, "sequence"),
    ],
)
def test_mask_observation_bad_indices(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MaskObservation(gym.make("AdvRL/Pendulum-v0"), **kwargs)


def test_observation_noise_statistics_and_bounds() -> None:
    clean = gym.make("AdvRL/Pendulum-v0")
    noisy = ObservationNoise(gym.make("AdvRL/Pendulum-v0"), std=[0.0, 0.0, 0.1])
    diffs = []
    for seed in range(4):
        a, b = clean.reset(seed=seed)[0], noisy.reset(seed=seed)[0]
        for _ in range(100):  # zero torque: identical dynamics, so differences are the noise
            diffs.append(b - a)
            a, b = clean.step([0.0])[0], noisy.step([0.0])[0]
    diffs = np.array(diffs)
    assert np.all(diffs[:, :2] == 0.0)
    assert abs(diffs[:, 2].mean()) < 0.02 and 0.09 < diffs[:, 2].std() < 0.11
    loud = ObservationNoise(gym.make("AdvRL/Pendulum-v0"), std=5.0)
    observations = [loud.reset(seed=0)[0]] + [loud.step([0.0])[0] for _ in range(50)]
    assert all(loud.observation_space.contains(o) for o in observations)
    for bad in (-0.1, np.inf, [0.1, 0.1]):
        with pytest.raises(ValueError, match="std"):
            ObservationNoise(gym.make("AdvRL/Pendulum-v0"), std=bad)


def test_random_shift_is_a_bounded_translation() -> None:
    pad = 3
    shifted_env = RandomShift(gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), pad=pad)
    clean_env = gym.make("AdvRL/GridWorld-v0", obs_mode="rgb")
    pairs = [(shifted_env.reset(seed=0)[0], clean_env.reset(seed=0)[0])]
    pairs += [(shifted_env.step(a)[0], clean_env.step(a)[0]) for a in (1, 2, 1, 2, 1, 2)]
    offsets = set()
    for shifted, clean in pairs:
        padded = np.pad(clean, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        matches = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if np.array_equal(shifted, padded[dy : dy + 40, dx : dx + 40])
        ]
        assert matches, "each observation must be a translation of the clean one"
        offsets.add(matches[0])
    assert len(offsets) > 1
    # On a noise image each offset gives a different crop: every shift in [-pad, pad] occurs on
    # both axes, the extremes included (200 draws of 7 values: missing one has probability ~1e-12).
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    padded = np.pad(noise, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    crops = {
        padded[dy : dy + 40, dx : dx + 40].tobytes(): (dy, dx)
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
    }
    assert len(crops) == (2 * pad + 1) ** 2
    drawn = [crops[shifted_env.observation(noise).tobytes()] for _ in range(200)]
    rows, cols = zip(*drawn, strict=True)
    assert set(rows) == set(cols) == set(range(2 * pad + 1))
    for bad in (0, 40, 2.5):
        with pytest.raises(ValueError, match="pad"):
            RandomShift(gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), pad=bad)


def test_env_spec_records_and_rebuilds_the_wrapper_stack() -> None:
    env = Curriculum(
        DomainRandomization(gym.make("AdvRL/Pendulum-v0"), PENDULUM_RANGES),
        [{"x_init": 0.5}, {}],
        success_threshold=-100.0,
    )
    assert [w.name for w in env.spec.additional_wrappers] == ["DomainRandomization", "Curriculum"]
    rebuilt = gym.make(env.spec)
    assert isinstance(rebuilt, Curriculum) and isinstance(rebuilt.env, DomainRandomization)
    first, second = env.reset(seed=2), rebuilt.reset(seed=2)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]


def test_action_repeat_sums_rewards_and_returns_the_last_step() -> None:
    reference, repeated = gym.make("AdvRL/Pendulum-v0"), ActionRepeat(gym.make("AdvRL/Pendulum-v0"), 3)
    first, _ = reference.reset(seed=4)
    np.testing.assert_array_equal(first, repeated.reset(seed=4)[0])
    for action in ([1.5], [-0.7], [0.2]):
        rewards = []
        for _ in range(3):
            obs, reward, terminated, truncated, info = reference.step(np.array(action, dtype=np.float32))
            rewards.append(reward)
        out = repeated.step(np.array(action, dtype=np.float32))
        np.testing.assert_array_equal(out[0], obs)
        assert out[1] == pytest.approx(sum(rewards), rel=1e-12)
        assert out[2:4] == (terminated, truncated)
        assert out[4]["frames"] == 3


def test_action_repeat_stops_at_the_episode_end() -> None:
    # A time limit of 5 steps with 2 per action: 2, 2, then the last single step is truncated.
    env = ActionRepeat(gym.make("AdvRL/Pendulum-v0", max_episode_steps=5), 2)
    env.reset(seed=0)
    frames = []
    for _ in range(3):
        _, _, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
        frames.append(info["frames"])
    assert frames == [2, 2, 1] and truncated and not terminated
    # A terminal step ends the repetition too: the grid world's goal is reached mid-repeat.
    grid = ActionRepeat(gym.make("AdvRL/GridWorld-v0", size=2, goal=(0, 1), slip=0.0), 4)
    grid.reset(seed=0)
    _, reward, terminated, _, info = grid.step(1)  # the single move right lands on the goal
    assert terminated and info["frames"] == 1
    reference = gym.make("AdvRL/GridWorld-v0", size=2, goal=(0, 1), slip=0.0)
    reference.reset(seed=0)
    assert reward == reference.step(1)[1]


def test_action_repeat_one_is_the_env_itself() -> None:
    plain, wrapped = gym.make("AdvRL/Pendulum-v0"), ActionRepeat(gym.make("AdvRL/Pendulum-v0"), 1)
    trajectory = rollout(wrapped, seed=3)
    assert same(trajectory, rollout(plain, seed=3))


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, None])
def test_action_repeat_bad_repeat(bad: object) -> None:
    with pytest.raises(ValueError, match=r"repeat must be an integer >= 1"):
        ActionRepeat(gym.make("AdvRL/Pendulum-v0"), bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("env_id", GOAL_IDS)
def test_action_repeat_refuses_goal_envs(env_id: str) -> None:
    with pytest.raises(ValueError, match=r"env must not be goal-conditioned .*compute_reward"):
        ActionRepeat(gym.make(env_id), 2)
