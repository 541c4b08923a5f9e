"""Reproducers of the hardening issue: each input once ended in a traceback, NaN/inf or an out-of-space observation."""

from __future__ import annotations

import itertools
import math
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from gym_advrl.envs import (
    CausalSCMEnv,
    ContinuousCartPoleEnv,
    GridWorldEnv,
    NonlinearRegulatorEnv,
    PendulumEnv,
    QuantumGateEnv,
    SequenceTrackingEnv,
)
from gym_advrl.envs.causal.scm import LinearGaussianSCM
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

MARL_MODULES = [cooperative_v0, competitive_v0, mixed_v0]


def assert_valid_step(env: gym.Env, obs: object, reward: float | None = None) -> None:
    assert env.observation_space.contains(obs), f"{obs} outside {env.observation_space}"
    if isinstance(obs, np.ndarray):
        assert np.all(np.isfinite(obs))
    if reward is not None:
        assert math.isfinite(reward)


# ---------------------------------------------------------------------------- 1. observations inside the space
def test_pendulum_small_max_speed_starts_inside_the_observation_space() -> None:
    env = gym.make("AdvRL/Pendulum-v0", max_speed=0.9)
    for seed in range(300):
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs), (seed, obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sb3_check_env(env)


def test_pendulum_default_start_still_matches_pendulum_v1() -> None:
    ours, ref = gym.make("AdvRL/Pendulum-v0"), gym.make("Pendulum-v1")
    for seed in range(5):
        np.testing.assert_array_equal(ours.reset(seed=seed)[0], ref.reset(seed=seed)[0])


@pytest.mark.parametrize(
    ("env_id", "options", "name"),
    [
        ("AdvRL/Pendulum-v0", {"y_init": 100}, "y_init"),
        ("AdvRL/Pendulum-v0", {"y_init": -1}, "y_init"),
        ("AdvRL/Pendulum-v0", {"x_init": 4.0}, "x_init"),
        ("AdvRL/ContinuousCartPole-v0", {"low": -10, "high": 10}, "low"),
        ("AdvRL/ContinuousCartPole-v0", {"high": 0.3}, "high"),
    ],
)
def test_start_options_that_leave_the_observation_space_are_rejected(
    env_id: str, options: dict, name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        gym.make(env_id).reset(seed=0, options=options)


def test_start_options_at_their_bounds_stay_inside_the_space() -> None:
    pendulum = gym.make("AdvRL/Pendulum-v0", max_speed=2.0)
    cartpole = gym.make("AdvRL/ContinuousCartPole-v0")
    for seed in range(50):
        assert_valid_step(pendulum, pendulum.reset(seed=seed, options={"x_init": np.pi, "y_init": 2.0})[0])
        assert_valid_step(cartpole, cartpole.reset(seed=seed, options={"low": -0.2, "high": 0.2})[0])


def test_cartpole_terminal_observation_is_clipped_into_the_space_and_the_state_then_frozen() -> None:
    env = ContinuousCartPoleEnv(force_mag=1e3, masscart=1e-3, masspole=1e-3, length=1e-3, tau=0.1)
    env.reset(seed=0)
    terminated = False
    while not terminated:
        obs, _, terminated, _, _ = env.step(np.ones(1, dtype=np.float32))
    assert env.observation_space.contains(obs) and np.all(np.isfinite(obs))
    assert abs(env.state[2]) > env.observation_space.high[2], "the true angle is beyond the bound"
    with pytest.warns(UserWarning, match="after the episode terminated"):
        again = env.step(np.ones(1, dtype=np.float32))
    np.testing.assert_array_equal(again[0], obs)
    assert again[1:4] == (0.0, True, False)


# ---------------------------------------------------------------------------- 2. physical parameters: ranges
@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: PendulumEnv(m=1e-39), "m"),
        (lambda: PendulumEnv(l=1e155), "l"),
        (lambda: PendulumEnv(g=1e300), "g"),
        (lambda: PendulumEnv(max_speed=1e39), "max_speed"),
        (lambda: PendulumEnv(dt=10.0), "dt"),
        (lambda: PendulumEnv().reset(options={"physics": {"l": 1e-170}}), "l"),
        (lambda: ContinuousCartPoleEnv(length=1e-300), "length"),
        (lambda: ContinuousCartPoleEnv(gravity=1e300), "gravity"),
        (lambda: ContinuousCartPoleEnv(tau=1.0), "tau"),
        (lambda: ContinuousCartPoleEnv().reset(options={"physics": {"force_mag": 1e300}}), "force_mag"),
        (lambda: DomainRandomization(gym.make("AdvRL/Pendulum-v0"), {"l": (1e-170, 1.0)}), "ranges"),
        (
            lambda: DomainRandomization(gym.make("AdvRL/ContinuousCartPole-v0"), {"gravity": (1.0, 1e300)}),
            "ranges",
        ),
        (lambda: NonlinearRegulatorEnv(process_noise=1e300), "process_noise"),
        (lambda: CausalSCMEnv(target=1e300), "target"),
        (lambda: CausalSCMEnv(graph={"X1": {}, "X2": {"X1": 1e200, "a": 1.0}}), "graph"),
        (lambda: CausalSCMEnv(graph={"X1": {}, "X2": {"X1": 1.0, "a": 1.0}}, noise_std=1e300), "noise_std"),
        (lambda: CausalSCMEnv(action_type="do", levels=(0.0, 1e300)), "levels"),
        (lambda: CausalSCMEnv(confounded=True, confounder_strength=1e300), "confounder_strength"),
        (lambda: ObservationNoise(gym.make("AdvRL/Pendulum-v0"), std=1e39), "std"),
        (lambda: cooperative_v0.parallel_env(arena_radius=1e300), "arena_radius"),
        (lambda: cooperative_v0.parallel_env(noise_std=1e300), "noise_std"),
    ],
)
def test_parameters_that_overflow_are_rejected(make, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()


def test_compounding_weights_are_rejected_even_when_each_is_in_range() -> None:
    chain = {"X1": {}, "X2": {"X1": 1e3, "a": 1.0}}
    for i in range(3, 13):  # a chain of gains 1000: 1e33 at the end
        chain[f"X{i}"] = {f"X{i - 1}": 1e3}
    with pytest.raises(ValueError, match="graph.*compound"):
        CausalSCMEnv(graph=chain)
    assert LinearGaussianSCM(chain).magnitude_bound().max() > 1e30


def test_magnitude_bound_bounds_sampled_values() -> None:
    scm = LinearGaussianSCM.random_dag(12, 0.6, seed=3, confounded=True)
    bound = scm.magnitude_bound(intervention_bound=2.0)
    noise, hidden = scm.sample_noise(2000, np.random.default_rng(0))
    scale = max(np.abs(noise).max(), np.abs(hidden).max(), 1.0)
    for interventions in (None, {"X5": 2.0}, {"X2": -2.0, "X8": 2.0}):
        values = scm.realize(noise, hidden, np.random.default_rng(1).uniform(-1, 1, 2000), interventions)
        assert np.all(np.abs(values) <= scale * bound + 1e-9)


PENDULUM_CORNERS = [
    dict(zip(("g", "m", "l", "damping", "max_torque"), corner, strict=True))
    for corner in itertools.product((1e-6, 1e3), (1e-3, 1e3), (1e-3, 1e3), (0.0, 1e3), (1e-6, 1e3))
]
CARTPOLE_CORNERS = [
    dict(zip(("gravity", "masscart", "masspole", "length", "force_mag"), corner, strict=True))
    for corner in itertools.product((1e-6, 1e3), (1e-3, 1e3), (1e-3, 1e3), (1e-3, 1e3), (1e-6, 1e3))
]


def bang_bang(env: gym.Env, steps: int, seed: int) -> None:
    """Full-scale actions of random sign (the most energetic inputs) and finite, in-space results."""
    rng = np.random.default_rng(seed)
    high = env.action_space.high
    obs, _ = env.reset(seed=seed)
    assert_valid_step(env, obs)
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(high * rng.choice([-1.0, 1.0], size=high.shape))
        assert_valid_step(env, obs, reward)
        if terminated or truncated:
            obs, _ = env.reset()
            assert_valid_step(env, obs)


def test_pendulum_stays_finite_at_every_corner_of_the_parameter_ranges() -> None:
    for physics in PENDULUM_CORNERS:
        for max_speed, dt in ((1e3, 1.0), (1e-3, 1e-3)):
            bang_bang(PendulumEnv(max_speed=max_speed, dt=dt, **physics), steps=200, seed=0)


def test_cartpole_episodes_stay_finite_at_every_corner_of_the_parameter_ranges() -> None:
    for physics in CARTPOLE_CORNERS:
        for tau in (0.1, 1e-4):
            bang_bang(gym.make("AdvRL/ContinuousCartPole-v0", tau=tau, **physics), steps=500, seed=0)


def test_domain_randomization_at_the_range_limits_runs() -> None:
    env = DomainRandomization(
        gym.make("AdvRL/Pendulum-v0"), {"m": (1e-3, 1e3), "l": (1e-3, 1e3)}, "log-uniform"
    )
    bang_bang(env, steps=400, seed=1)


def test_regulator_and_causal_at_their_limits_stay_finite() -> None:
    bang_bang(gym.make("AdvRL/NonlinearRegulator-v0", process_noise=10.0), steps=300, seed=0)
    chain = {"X1": {}, "X2": {"X1": 1e3, "a": 1e3}, "X3": {"X2": 1e3, "X1": -1e3}}
    env = gym.make("AdvRL/CausalSCM-v0", graph=chain, noise_std=1e3, target=1e6, confounded=True,
                   confounder_strength=1e3)  # fmt: skip
    bang_bang(env, steps=100, seed=0)


def test_observation_noise_on_unbounded_dimensions_stays_finite() -> None:
    env = ObservationNoise(gym.make("AdvRL/NonlinearRegulator-v0"), std=1e6)
    obs, _ = env.reset(seed=0)
    assert np.all(np.isfinite(obs)) and np.abs(obs).max() > 1e3


# ---------------------------------------------------------------------------- 3. ValueError, not OverflowError
@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: GridWorldEnv(goal=(np.inf, 0)), "goal"),
        (lambda: GridWorldEnv(goal=(1e308 * 10, 0)), "goal"),
        (lambda: GridWorldEnv(walls=[(np.nan, 1)]), "walls"),
        (lambda: GridWorldEnv(start=(10**400, 0)), "start"),
        (lambda: GridWorldEnv().reset(options={"goal": (np.inf, 0)}), "goal"),
        (lambda: GoalSchedule(gym.make("AdvRL/GridWorld-v0"), goals=[(np.inf, 0)]), "goals"),
        (lambda: PendulumEnv().reset(options={"x_init": 1e308}), "x_init"),
        (lambda: ContinuousCartPoleEnv().reset(options={"low": -1e308, "high": 1e308}), "low"),
        (lambda: PendulumEnv(m=10**400), "m"),
        (lambda: QuantumGateEnv(target=10**400), "target"),
        (lambda: LinearGaussianSCM.seed_graph().sample(3, interventions={"X2": 10**400}), "interventions"),
    ],
)
def test_huge_and_infinite_numbers_raise_value_error(make, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()


# ---------------------------------------------------------------------------- 4. NonlinearRegulator reset options
@pytest.mark.parametrize("options", [{"bogus": 1}, "str", ["physics"]])
def test_regulator_reset_rejects_options(options) -> None:
    with pytest.raises(ValueError, match="options"):
        gym.make("AdvRL/NonlinearRegulator-v0").reset(seed=0, options=options)


def test_curriculum_over_the_regulator_rejects_nonsense_levels() -> None:
    with pytest.raises(ValueError, match="levels"):
        Curriculum(gym.make("AdvRL/NonlinearRegulator-v0"), [{"bogus": 1}])


# ---------------------------------------------------------------------------- 5. strict actions
BOX_IDS = [env_id for env_id in ADVRL_IDS if isinstance(gym.make(env_id).action_space, spaces.Box)]


@pytest.mark.parametrize("env_id", BOX_IDS)
@pytest.mark.parametrize(
    "bad", ["0.5", b"1", 0.5 + 1j, np.array([0.5 + 0j]), np.array([True]), [None], {"a": 1}]
)
def test_box_actions_must_be_real_numbers(env_id: str, bad) -> None:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    if isinstance(bad, np.ndarray | list):
        bad = np.resize(np.asarray(bad), env.action_space.shape)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)


@pytest.mark.parametrize("env_id", [env_id for env_id in ADVRL_IDS if env_id not in BOX_IDS])
@pytest.mark.parametrize("bad", ["1", True, np.bool_(False), 1 + 0j, np.array([1.5]), None])
def test_discrete_actions_must_be_integers(env_id: str, bad) -> None:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)


@pytest.mark.parametrize("mod", MARL_MODULES)
@pytest.mark.parametrize("bad", ["0.5", np.array(["0.5", "0.1"]), np.array([0.5 + 1j, 0.0]), 0.5 + 1j])
def test_marl_continuous_actions_must_be_real_numbers(mod, bad) -> None:
    par = mod.parallel_env()
    par.reset(seed=0)
    actions = {agent: np.zeros(2, dtype=np.float32) for agent in par.agents}
    actions[par.agents[1]] = bad
    with pytest.raises(ValueError, match=par.agents[1]):
        par.step(actions)
    aec = mod.env()
    aec.reset(seed=0)
    with pytest.raises(ValueError, match=aec.agent_selection):
        aec.step(bad)


@pytest.mark.parametrize("mod", MARL_MODULES)
@pytest.mark.parametrize("bad", [True, np.bool_(True), "1", 2.5])
def test_marl_discrete_parallel_actions_reject_booleans_and_non_integers(mod, bad) -> None:
    par = mod.parallel_env(continuous_actions=False)
    par.reset(seed=0)
    actions = dict.fromkeys(par.agents, 2)
    actions[par.agents[-1]] = bad
    with pytest.raises(ValueError, match=par.agents[-1]):
        par.step(actions)
    par.step({agent: np.int64(1) for agent in par.agents})  # numpy integers still take the fast path


# ---------------------------------------------------------------------------- 6. constructor arguments
@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_unknown_keyword_raises_value_error_listing_accepted_arguments(env_id: str) -> None:
    with pytest.raises(ValueError, match=r"bogus_argument.*accepted arguments are \(.*render_mode"):
        gym.make(env_id, bogus_argument=1)


@pytest.mark.parametrize("mod", MARL_MODULES)
def test_marl_unknown_keyword_raises_value_error(mod) -> None:
    for make in (mod.env, mod.parallel_env, mod.raw_env):
        with pytest.raises(ValueError, match=r"n_agent\b.*accepted arguments are \(.*n_agents"):
            make(n_agent=3)


@pytest.mark.parametrize(
    "make",
    [
        lambda env: DomainRandomization(env, {"m": (1, 2)}, distrib="uniform"),
        lambda env: Curriculum(env, [{}], windows=3),
        lambda env: GoalSchedule(env, [(1, 1)], switch=3),
        lambda env: ObservationNoise(env, sigma=0.1),
        lambda env: RandomShift(env, padding=2),
        lambda env: MaskObservation(env, dropped=[0]),
    ],
)
def test_wrapper_unknown_keyword_raises_value_error(make) -> None:
    with pytest.raises(ValueError, match="accepted arguments are"):
        make(gym.make("AdvRL/Pendulum-v0"))


def test_signatures_stay_introspectable() -> None:
    import inspect

    assert list(inspect.signature(PendulumEnv).parameters)[:3] == ["render_mode", "g", "m"]
    assert "n_agents" in inspect.signature(cooperative_v0.parallel_env).parameters


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_vars": 2}, "n_vars"), ({"edge_prob": 1.5}, "edge_prob"), ({"graph_seed": -1}, "graph_seed"),
     ({"graph_seed": 0.5}, "graph_seed"), ({"n_vars": 51, "graph": "random"}, "n_vars")],
)  # fmt: skip
def test_causal_random_graph_arguments_checked_whatever_the_graph(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        CausalSCMEnv(**kwargs)


def test_causal_mapping_graph_size_bounded() -> None:
    graph = {f"X{i}": ({} if i == 0 else {f"X{i - 1}": 0.5}) for i in range(60)}
    graph["X1"]["a"] = 1.0
    with pytest.raises(ValueError, match="graph.*at most 50"):
        CausalSCMEnv(graph=graph)


def test_grid_with_no_free_start_cell_names_the_argument() -> None:
    with pytest.raises(ValueError, match="start"):
        GridWorldEnv(size=2, walls=[(0, 0), (0, 1), (1, 0)])
    with pytest.raises(ValueError, match="start=None"):
        GridWorldEnv(size=2, walls=[(0, 0), (0, 1), (1, 0)], start=None)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: GridWorldEnv(size=1001), "size"),
        (lambda: GridWorldEnv(cell_px=65), "cell_px"),
        (lambda: GridWorldEnv(size=600, obs_mode="rgb", cell_px=8), "cell_px"),
        (lambda: GridWorldEnv(goal_reward=1e300), "goal_reward"),
        (lambda: cooperative_v0.parallel_env(n_agents=10**5), "n_agents"),
        (lambda: mixed_v0.env(n_agents=101), "n_agents"),
        (lambda: SequenceTrackingEnv(episode_length=1), "episode_length"),
    ],
)
def test_sizes_are_bounded(make, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()


def test_long_sequence_tracking_episode_renders_a_small_frame_in_constant_memory() -> None:
    env = SequenceTrackingEnv(episode_length=10**6, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(1000):
        env.step(1)
    frame = env.render()
    assert frame.nbytes < 2 * 2**20 and frame.shape[1] == 4 * (SequenceTrackingEnv.RENDER_STEPS + 1)
    assert len(env.history) == 3


def test_large_grid_renders_a_bounded_frame() -> None:
    env = GridWorldEnv(size=1000, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (1000, 1000, 3)  # 32 px per cell would make 3 GB
    small = GridWorldEnv(size=(5, 100), render_mode="rgb_array")
    small.reset(seed=0)
    assert small.render().shape == (50, 1000, 3)


def test_two_step_sequence_tracking_passes_gymnasium_checker() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gym_check_env(gym.make("AdvRL/SequenceTracking-v0", episode_length=2).unwrapped)


def test_sequence_tracking_time_fraction_stays_in_space_past_truncation() -> None:
    env = SequenceTrackingEnv(episode_length=2)
    env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(0)
        assert env.observation_space.contains(obs)


# ---------------------------------------------------------------------------- 10. cost
def test_quantum_gates_info_is_a_constant_time_view_equal_to_the_tuple() -> None:
    env = QuantumGateEnv(n_qubits=1, gates=["x", "h"], target="plus", threshold=1.0)
    _, info = env.reset(seed=0)
    assert info["gates"] == () and len(info["gates"]) == 0
    infos = [env.step(i % 2)[4] for i in range(5)]
    assert infos[1]["gates"] == ("x q[0]", "h q[0]") and infos[1]["gates"] != ("x q[0]",)
    assert infos[4]["gates"][-1] == "x q[0]" and infos[4]["gates"][1:3] == ("h q[0]", "x q[0]")
    assert list(infos[4]["gates"]) == ["x q[0]", "h q[0]", "x q[0]", "h q[0]", "x q[0]"]
    assert hash(infos[2]["gates"]) == hash(tuple(infos[2]["gates"]))
    import pickle

    assert type(pickle.loads(pickle.dumps(infos[3]["gates"]))) is tuple
    env.reset()
    assert infos[4]["gates"] == ("x q[0]", "h q[0]", "x q[0]", "h q[0]", "x q[0]"), (
        "earlier infos keep their episode"
    )


def test_quantum_step_cost_does_not_grow_with_the_episode() -> None:
    env = QuantumGateEnv(n_qubits=1, gates=["x"], target="plus")  # never succeeds: one long episode
    env.reset(seed=0)

    def chunk() -> float:
        start = time.process_time()
        for _ in range(3000):
            env.step(0)
        return time.process_time() - start

    first = min(chunk() for _ in range(2))
    for _ in range(10):
        chunk()
    last = min(chunk() for _ in range(2))
    assert last < 3 * first + 0.01, (first, last)
    assert env.to_qasm().count("x q[0];") == 42_000


def test_causal_frames_of_large_random_graphs_are_fast_and_bounded() -> None:
    env = CausalSCMEnv(graph="random", n_vars=50, edge_prob=0.3, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.zeros(1, dtype=np.float32))
    start = time.perf_counter()
    frame = env.render()
    assert time.perf_counter() - start < 3.0, "a frame took 19 s before the canvas drew within bounding boxes"
    assert max(frame.shape[:2]) <= 1600 and frame.min() < frame.max()
