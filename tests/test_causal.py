"""AdvRL/CausalSCM-v0: exact structural equations, interventions, confounding and discovery.

The seed graph is X1 = e1 (sd .5); X2 = .7 X1 + .5 a + e2 (sd .3); X3 = .8 X2 + .3 X1 + e3 (sd .4),
so E[X3 | X1, a] = .86 X1 + .4 a and E[X3 | do(X2 = v)] = .8 v.
"""

from __future__ import annotations

import re
import sys

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.causal import CausalSCMEnv, LinearGaussianSCM
from gym_advrl.envs.causal.discovery import cpdag, pc, random_policy_data, shd

SEED_GRAPH = {"X1": {}, "X2": {"X1": 0.7, "a": 0.5}, "X3": {"X2": 0.8, "X1": 0.3}}


def ols(y: np.ndarray, *columns: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of y on [1, columns...]."""
    design = np.column_stack([np.ones_like(y), *columns])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def env_rollout(env: gym.Env, action, n_steps: int, seed: int) -> dict[str, np.ndarray]:
    """Every realized variable over ``n_steps`` steps with a fixed action."""
    env.reset(seed=seed)
    rows = []
    for _ in range(n_steps):
        _, _, terminated, truncated, info = env.step(action)
        rows.append(info["variables"])
        if terminated or truncated:
            env.reset()
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}


# ---------------------------------------------------------------- 1. construction and errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"graph": {"X1": {"X2": 1.0}, "X2": {"X1": 1.0, "a": 1.0}}}, "acyclic"),
        ({"graph": {"X1": {"X1": 0.5, "a": 1.0}}}, "acyclic"),
        ({"graph": {"X1": {}, "X2": {"X9": 1.0, "a": 1.0}}}, "unknown variable 'X9'"),
        ({"graph": {"X1": {}, "X2": {"X1": np.nan, "a": 1.0}}}, "graph\\['X2'\\]\\['X1'\\]"),
        ({"graph": {"X1": {}, "X2": {"X1": 1.0}}}, "action 'a' must be a parent"),
        ({"graph": {"X1": {"a": 1.0}}}, "observed before acting"),
        ({"graph": "circle"}, "graph"),
        ({"graph": 3}, "graph"),
        ({"levels": ()}, "levels"),
        ({"levels": (0.0, 0.0)}, "levels"),
        ({"levels": (0.0, np.inf)}, "levels"),
        ({"levels": "01"}, "levels"),
        ({"action_type": "multiply"}, "action_type"),
        ({"outcome": "X1"}, "outcome"),
        ({"outcome": "X7"}, "outcome"),
        ({"action_type": "do", "intervenable": ("X1",)}, "intervenable"),
        ({"action_type": "do", "intervenable": ("X2", "X2")}, "intervenable"),
        ({"target": np.nan}, "target"),
        ({"graph": "random", "n_vars": 2}, "n_vars"),
        ({"graph": "random", "edge_prob": 1.5}, "edge_prob"),
        ({"graph": {"X1": {}, "X2": {"X1": 1.0, "a": 1.0}}, "noise_std": {"X1": 1.0}}, "noise_std"),
        ({"graph": {"X1": {}, "X2": {"X1": 1.0, "a": 1.0}}, "noise_std": -1.0}, "noise_std"),
        ({"noise_std": 1.0}, "noise_std"),
        ({"confounder_strength": -0.1, "confounded": True}, "confounder_strength"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CausalSCMEnv(**kwargs)


def test_bad_sampling_arguments_raise_value_error() -> None:
    scm = LinearGaussianSCM.seed_graph()
    with pytest.raises(ValueError, match="interventions: unknown variable"):
        scm.sample(10, interventions={"X4": 1.0})
    with pytest.raises(ValueError, match="interventions\\['X2'\\]"):
        scm.sample(10, interventions={"X2": np.ones(3)})
    with pytest.raises(ValueError, match="action"):
        scm.sample(10, action=np.nan)
    with pytest.raises(ValueError, match="given: 'X2' is intervened"):
        scm.interventional_mean({"X2": 1.0}, given={"X2": 0.0})


def test_seed_graph_structure() -> None:
    env = gym.make("AdvRL/CausalSCM-v0").unwrapped
    scm = env.scm
    assert scm.variables == ("X1", "X2", "X3")
    np.testing.assert_array_equal(scm.adjacency, [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(scm.augmented_adjacency[0], [0, 0, 1, 0])  # a -> X2 only
    assert env.observed_variables == ("X1",) and env.outcome == "X3"
    assert scm.descendants("a") == ("X2", "X3") and scm.descendants("X1") == ("X2", "X3")


def test_random_dags_are_seeded_acyclic_and_controllable() -> None:
    first = LinearGaussianSCM.random_dag(6, 0.3, seed=4)
    again = LinearGaussianSCM.random_dag(6, 0.3, seed=4)
    np.testing.assert_array_equal(first.weights, again.weights)
    adjacencies = {LinearGaussianSCM.random_dag(6, 0.3, seed=s).adjacency.tobytes() for s in range(10)}
    assert len(adjacencies) == 10
    for seed in range(10):
        scm = LinearGaussianSCM.random_dag(6, 0.3, seed=seed, confounded=True)
        assert scm.variables == tuple(f"X{i}" for i in range(1, 7))
        assert not np.tril(scm.adjacency).any(), "names follow a topological order"
        assert "X6" in scm.descendants("a") and "X1" not in scm.descendants("a")
        assert np.count_nonzero(scm.confounder_weights) == 2


# ---------------------------------------------------------------- 2. exact interventions
def test_structural_equations_are_solved_exactly() -> None:
    scm = LinearGaussianSCM.seed_graph(confounded=True, confounder_strength=0.5)
    rng = np.random.default_rng(0)
    noise, hidden, action = rng.standard_normal((50, 3)), rng.standard_normal(50), rng.uniform(-1, 1, 50)
    x = scm.realize(noise, hidden, action)
    x1 = 0.5 * noise[:, 0]
    x2 = 0.7 * x1 + 0.5 * action + 0.5 * hidden + 0.3 * noise[:, 1]
    x3 = 0.8 * x2 + 0.3 * x1 + 0.5 * hidden + 0.4 * noise[:, 2]
    np.testing.assert_allclose(x, np.column_stack([x1, x2, x3]), rtol=1e-12, atol=1e-12)
    cut = scm.realize(noise, hidden, action, interventions={"X2": 2.0})
    np.testing.assert_array_equal(cut[:, 1], 2.0)
    np.testing.assert_allclose(cut[:, 2], 1.6 + 0.3 * x1 + 0.5 * hidden + 0.4 * noise[:, 2], rtol=1e-12)


def test_analytic_means_match_the_closed_form() -> None:
    scm = LinearGaussianSCM.seed_graph()
    x1, a = np.linspace(-2, 2, 9), np.linspace(-1, 1, 9)
    mean = scm.interventional_mean(action=a, given={"X1": x1})
    np.testing.assert_allclose(mean[:, 2], 0.86 * x1 + 0.4 * a, atol=1e-12)
    np.testing.assert_allclose(mean[:, 1], 0.7 * x1 + 0.5 * a, atol=1e-12)
    v = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(scm.interventional_mean({"X2": v}, action=1.0)[:, 2], 0.8 * v, atol=1e-12)
    cov = scm.interventional_covariance(given=["X1"])
    assert cov[2, 2] == pytest.approx(0.8**2 * 0.3**2 + 0.4**2, abs=1e-12)


@pytest.mark.parametrize("action", [-1.0, -0.4, 0.0, 0.7, 1.0])
def test_sampled_x3_given_x1_and_action_matches_analytic(action: float) -> None:
    scm = LinearGaussianSCM.seed_graph()
    x = scm.sample(1_000_000, action=action, rng=1)
    intercept, slope = ols(x[:, 2], x[:, 0])
    # Standard errors are ~5e-4 (intercept) and ~1e-3 (slope): 5e-3 is 5-10 of them.
    assert intercept == pytest.approx(0.4 * action, abs=5e-3)
    assert slope == pytest.approx(0.86, abs=5e-3)


def test_env_steps_follow_the_structural_equations() -> None:
    env = gym.make("AdvRL/CausalSCM-v0")
    data = env_rollout(env, np.array([0.6], dtype=np.float32), 3000, seed=5)
    assert set(data) == {"X1", "X2", "X3", "a"}
    np.testing.assert_array_equal(data["a"], np.float32(0.6))
    residual = data["X3"] - (0.86 * data["X1"] + 0.4 * data["a"])
    # sd of the residual is sqrt(.8^2 .3^2 + .4^2) = .466, so its mean has SE .0085.
    assert abs(residual.mean()) < 0.035
    assert residual.std() == pytest.approx(np.sqrt(0.2176), rel=0.05)
    assert (data["X2"] - 0.7 * data["X1"] - 0.5 * data["a"]).std() == pytest.approx(0.3, rel=0.05)


def test_observation_is_the_realized_x1_of_the_next_step() -> None:
    env = gym.make("AdvRL/CausalSCM-v0")
    obs, _ = env.reset(seed=2)
    for _ in range(20):
        next_obs, reward, _, _, info = env.step(np.array([0.1], dtype=np.float32))
        assert np.float32(info["variables"]["X1"]) == obs[0]
        assert reward == pytest.approx(-((info["variables"]["X3"] - 1.0) ** 2))
        obs = next_obs


@pytest.mark.parametrize("level", [-1.0, 0.5, 2.0])
def test_do_x2_cuts_the_edge_from_x1(level: float) -> None:
    scm = LinearGaussianSCM.seed_graph()
    x = scm.sample(1_000_000, interventions={"X2": level}, action=1.0, rng=3)
    np.testing.assert_array_equal(x[:, 1], level)
    assert x[:, 2].mean() == pytest.approx(0.8 * level, abs=3e-3)  # SE 4.3e-4
    _, slope = ols(x[:, 2], x[:, 0])
    assert slope == pytest.approx(0.3, abs=5e-3), "only the direct X1 -> X3 effect remains"


def test_do_actions_in_the_env() -> None:
    env = gym.make("AdvRL/CausalSCM-v0", action_type="do")
    unwrapped = env.unwrapped
    assert (
        env.action_space.n == 4 and unwrapped.intervenable == ("X2",) and unwrapped.levels == (-1.0, 0.0, 1.0)
    )
    for action, level in ((1, -1.0), (3, 1.0)):
        data = env_rollout(env, action, 2000, seed=action)
        assert "a" not in data
        np.testing.assert_array_equal(data["X2"], level)
        assert data["X3"].mean() == pytest.approx(0.8 * level, abs=0.05)  # SE .0095
    _, _, _, _, info = env.step(0)
    assert info["intervention"] == {}


# ---------------------------------------------------------------- 3. confounding
def backdoor_coefficient(scm: LinearGaussianSCM, seed: int) -> float:
    """Coefficient of X2 when regressing X3 on (X2, X1, a) under a uniformly random action."""
    rng = np.random.default_rng(seed)
    action = rng.uniform(-1.0, 1.0, 1_000_000)
    x = scm.sample(1_000_000, action=action, rng=rng)
    return float(ols(x[:, 2], x[:, 1], x[:, 0], action)[1])


def test_backdoor_adjustment_recovers_the_effect_without_confounding() -> None:
    assert backdoor_coefficient(LinearGaussianSCM.seed_graph(), seed=0) == pytest.approx(0.8, abs=0.01)


def test_hidden_confounder_biases_the_adjusted_regression_but_not_do() -> None:
    scm = LinearGaussianSCM.seed_graph(confounded=True, confounder_strength=0.5)
    # Analytic biased coefficient: .8 + Cov(U-part) / Var(X2 | X1, a) = .8 + .25 / (.09 + .25) = 1.535.
    cov = scm.interventional_covariance(given=["X1"])
    biased = cov[1, 2] / cov[1, 1]
    assert biased == pytest.approx(0.8 + 0.25 / 0.34, abs=1e-12)
    coefficient = backdoor_coefficient(scm, seed=1)
    assert coefficient == pytest.approx(biased, abs=0.01)
    assert coefficient - 0.8 > 0.5, "stated margin: the confounding bias exceeds 0.5"
    high = scm.sample(1_000_000, interventions={"X2": 1.0}, rng=2)[:, 2].mean()
    low = scm.sample(1_000_000, interventions={"X2": -1.0}, rng=3)[:, 2].mean()
    assert (high - low) / 2.0 == pytest.approx(0.8, abs=0.01)


def test_confounded_env_do_effect_is_unbiased() -> None:
    env = gym.make("AdvRL/CausalSCM-v0", action_type="do", confounded=True)
    high = env_rollout(env, 3, 1500, seed=0)["X3"].mean()
    low = env_rollout(env, 1, 1500, seed=1)["X3"].mean()
    assert (high - low) / 2.0 == pytest.approx(0.8, abs=0.06)  # SE .012


def test_analytic_moments_match_samples_on_a_confounded_random_graph() -> None:
    scm = LinearGaussianSCM.random_dag(6, 0.4, seed=7, confounded=True)
    interventions = {"X3": 0.7}
    x = scm.sample(400_000, interventions=interventions, action=0.5, rng=0)
    np.testing.assert_allclose(x.mean(axis=0), scm.interventional_mean(interventions, 0.5), atol=0.01)
    np.testing.assert_allclose(np.cov(x.T), scm.interventional_covariance(interventions), atol=0.02)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_vars=st.integers(3, 8),
    action=st.floats(-2.0, 2.0),
    level=st.floats(-3.0, 3.0),
    which=st.integers(0, 7),
)
def test_structural_solve_agrees_with_the_analytic_moments(seed, n_vars, action, level, which) -> None:
    """Two independent paths: equations solved in topological order vs (I - W)^-1 algebra."""
    scm = LinearGaussianSCM.random_dag(n_vars, 0.5, seed=seed, confounded=True)
    interventions = {scm.variables[which % n_vars]: level}
    base = scm.realize(np.zeros((1, n_vars)), np.zeros(1), action, interventions)[0]
    np.testing.assert_allclose(base, scm.interventional_mean(interventions, action), atol=1e-9)
    # The solution is affine in the exogenous inputs: its Jacobian gives the exact covariance.
    jacobian = scm.realize(np.eye(n_vars), np.zeros(n_vars), action, interventions) - base
    through_u = scm.realize(np.zeros((1, n_vars)), np.ones(1), action, interventions)[0] - base
    covariance = jacobian.T @ jacobian + np.outer(through_u, through_u)
    np.testing.assert_allclose(covariance, scm.interventional_covariance(interventions), atol=1e-9)


# ---------------------------------------------------------------- analytic optimum
def test_optimal_action_and_expected_reward() -> None:
    env = CausalSCMEnv()
    x1 = np.array([[-1.0], [0.0], [0.9], [2.0]])
    expected = np.clip((1.0 - 0.86 * x1) / 0.4, -1.0, 1.0)
    np.testing.assert_allclose(env.optimal_action(x1), expected, atol=1e-12)
    value = env.expected_reward(x1, expected)
    np.testing.assert_allclose(
        value, -((0.86 * x1[:, 0] + 0.4 * expected[:, 0] - 1.0) ** 2 + 0.2176), atol=1e-12
    )
    assert np.all(value >= env.expected_reward(x1, np.zeros_like(x1)))
    do_env = CausalSCMEnv(action_type="do")
    # do(X2 := v): E[X3] = .8 v + .3 X1; the level closest to target 1 wins (codes 1, 2, 3 = -1, 0, 1).
    np.testing.assert_array_equal(do_env.optimal_action(np.array([[0.0], [2.5], [5.0]])), [3, 2, 1])


# ---------------------------------------------------------------- 4. discovery
def test_shd_counts_differing_pairs() -> None:
    true = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert shd(true, true) == 0
    assert shd(true.T, true) == 2  # both edges reversed
    assert shd(np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0]]), true) == 1  # one undirected
    assert shd(np.zeros((3, 3), int), true) == 2
    assert shd(np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]]), true) == 1  # one extra edge
    with pytest.raises(ValueError, match="same shape"):
        shd(np.zeros((2, 2), int), true)


def test_cpdag_keeps_only_the_identifiable_orientations() -> None:
    triangle = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(cpdag(triangle), [[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    collider = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(cpdag(collider), collider)
    seed_with_action = LinearGaussianSCM.seed_graph().augmented_adjacency
    np.testing.assert_array_equal(cpdag(seed_with_action), seed_with_action)  # a -> X2 <- X1 orients all


def test_pc_recovers_the_seed_dag_from_random_policy_steps() -> None:
    env = gym.make("AdvRL/CausalSCM-v0")
    data, names = random_policy_data(env, 5000, seed=0)
    assert names == ("a", "X1", "X2", "X3") and data.shape == (5000, 4)
    estimated = pc(data, alpha=0.01, node_names=names)
    assert shd(estimated, env.unwrapped.scm.augmented_adjacency) == 0
    # Without the action only the skeleton is identified: X1 - X2 - X3 - X1 stays undirected.
    observational = pc(data[:, 1:], alpha=0.01)
    assert shd(observational, env.unwrapped.scm.adjacency) == 3


def test_pc_without_causal_learn_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [m for m in sys.modules if m == "causallearn" or m.startswith("causallearn.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "causallearn", None)
    message = (
        'causal discovery needs causal-learn, the optional [causal] extra: pip install "gym-advrl[causal]"'
    )
    with pytest.raises(ImportError, match="^" + re.escape(message) + "$"):
        pc(np.random.default_rng(0).standard_normal((50, 3)))
