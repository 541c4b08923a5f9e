"""Exact behaviour of the causal SCM env: graphs, sampling, interventions, rewards, arguments.

Complements test_causal.py (structural equations, interventional statistics, confounding,
discovery) with exact error messages, constructors' ranges, the magnitude bound, the ``do``
action table, the text and frame renderings and the discovery helpers' argument checks.
The seed graph: X1 = e1 (sd .5); X2 = .7 X1 + .5 a + e2 (sd .3); X3 = .8 X2 + .3 X1 + e3 (sd .4).
"""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.causal import CausalSCMEnv, LinearGaussianSCM, discovery
from gym_advrl.envs.causal._drawing import arrow, layered_layout, value_color
from gym_advrl.envs.causal._graph import reachability, topological_order
from gym_advrl.envs.causal.discovery import _from_causal_learn, cpdag, pc, random_policy_data, shd
from gym_advrl.utils.canvas import Canvas

SEED_GRAPH = {"X1": {}, "X2": {"X1": 0.7, "a": 0.5}, "X3": {"X2": 0.8, "X1": 0.3}}
#: X1 -> X2 <- a, X2 -> X3 -> X4: two intervenable variables before the outcome X4.
CHAIN = {"X1": {}, "X2": {"X1": 1.0, "a": 1.0}, "X3": {"X2": 1.0}, "X4": {"X3": 1.0}}


# ---------------------------------------------------------------------------- the model
def test_repr_writes_the_structural_equations() -> None:
    scm = LinearGaussianSCM.seed_graph(confounded=True, confounder_strength=0.5)
    assert repr(scm) == (
        "LinearGaussianSCM(X1 = +0.5 e_X1; X2 = +0.7 X1 +0.5 a +0.5 U +0.3 e_X2; "
        "X3 = +0.3 X1 +0.8 X2 +0.5 U +0.4 e_X3)"
    )
    assert repr(LinearGaussianSCM({"B": {"A": -2.0}, "A": {}}, 1.5)) == (
        "LinearGaussianSCM(A = +1.5 e_A; B = -2 A +1.5 e_B)"
    )


def test_magnitude_bound_sums_the_absolute_path_gains() -> None:
    scm = LinearGaussianSCM.seed_graph(confounded=True, confounder_strength=0.5)
    # Inputs per variable: noise sd + |action weight| + |confounder weight|.
    inputs = np.array([0.5, 0.3 + 0.5 + 0.5, 0.4 + 0.5])
    # Path gains: X1 -> X2 .7, X1 -> X3 .3 + .7 * .8, X2 -> X3 .8.
    gains = np.array([[1.0, 0.7, 0.86], [0.0, 1.0, 0.8], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(scm.magnitude_bound(), inputs @ gains, rtol=1e-12)
    np.testing.assert_allclose(scm.magnitude_bound(2.0), inputs @ gains + 2.0, rtol=1e-12)
    negative = LinearGaussianSCM({"X1": {}, "X2": {"X1": -3.0, "a": -2.0}}, 1.0)
    np.testing.assert_allclose(negative.magnitude_bound(0.5), [1.0 + 0.5, 1.0 + 2.0 + 3.0 + 1.5])


def test_structure_helpers() -> None:
    scm = LinearGaussianSCM(CHAIN)
    assert scm.n_vars == 4 and not scm.confounded
    assert scm.adjacency.dtype.kind == "i" and scm.augmented_adjacency.dtype.kind == "i"
    np.testing.assert_array_equal(
        scm.augmented_adjacency,
        [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    )
    assert scm.descendants("X2") == ("X3", "X4") and scm.descendants("X4") == ()
    assert scm.descendants("a") == ("X2", "X3", "X4") and scm.index("X3") == 2
    with pytest.raises(ValueError, match=r"^unknown variable 'X9'; variables are \('X1', 'X2', 'X3', 'X4'\)"):
        scm.index("X9")
    np.testing.assert_array_equal(scm.noise_std, np.ones(4))
    np.testing.assert_array_equal(scm.confounder_weights, np.zeros(4))
    # Variables come in topological order whatever the mapping's order; ties keep the given order.
    assert LinearGaussianSCM({"C": {"B": 1.0}, "B": {}, "A": {}}).variables == ("B", "C", "A")
    assert topological_order(["y", "x"], {"y": {"a": 1.0}, "x": {"y": 1.0}}) == ("y", "x")
    reach = reachability(np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]))
    np.testing.assert_array_equal(reach, np.triu(np.ones((4, 4), bool), k=1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"parents": {}}, r"graph must be a non-empty mapping \{child: \{parent: weight\}\}, got \{\}"),
        ({"parents": [("X1", {})]}, "graph must be a non-empty mapping"),
        ({"parents": {"a": {}}}, "graph variable names must be non-empty strings other than 'a', got 'a'"),
        ({"parents": {"": {}}}, "graph variable names must be non-empty strings other than 'a', got ''"),
        ({"parents": {1: {}}}, "graph variable names must be non-empty strings other than 'a', got 1"),
        ({"parents": {"X1": [1.0]}}, r"graph\['X1'\] must be a mapping \{parent: weight\}, got \[1.0\]"),
        ({"parents": {"X1": {}, "X2": {"X1": 1001.0}}}, r"graph\['X2'\]\['X1'\]"),
        (
            {"parents": {"X1": {}, "X2": {"X1": -1000.5}}},
            r"graph\['X2'\]\['X1'\] must be a number in \[-1000, 1000\], got -1000.5$",
        ),
        (
            {"parents": {"X1": {}}, "noise_std": {"X1": 1000.5}},
            r"noise_std\['X1'\] must be a number in \(0, 1000\], got 1000.5$",
        ),
        (
            {"parents": {"X1": {}}, "confounders": {"X1": 1000.5}},
            r"confounders\['X1'\] must be a number in \[-1000, 1000\], got 1000.5$",
        ),
        ({"parents": {"X1": {}, "X2": {"X1": -1000.0}}, "noise_std": 1000.0}, None),
        ({"parents": {"X1": {}}, "noise_std": 0.0}, "noise_std"),
        ({"parents": {"X1": {}}, "noise_std": 1000.5}, "noise_std"),
        (
            {"parents": {"X1": {}}, "noise_std": {"X1": 1.0, "X9": 1.0}},
            r"noise_std: unknown variable\(s\) \['X9'\]",
        ),
        (
            {"parents": {"X1": {}, "X2": {}}, "noise_std": {"X1": 1.0}},
            r"noise_std needs a value for every variable; missing \['X2'\]",
        ),
        ({"parents": {"X1": {}, "X2": {}}, "noise_std": {"X1": 1.0, "X2": 0.0}}, r"noise_std\['X2'\]"),
        ({"parents": {"X1": {}}, "confounders": {"X1": -1000.0}}, None),
        ({"parents": {"X1": {}}, "confounders": {"X1": -1000.5}}, r"confounders\['X1'\]"),
        ({"parents": {"X1": {}}, "confounders": {"X2": 1.0}}, r"confounders: unknown variable\(s\) \['X2'\]"),
    ],
)
def test_model_arguments_are_checked(kwargs: dict, match: str | None) -> None:
    if match is None:
        LinearGaussianSCM(**kwargs)  # the bounds are inclusive
    else:
        with pytest.raises(ValueError, match="^" + match):
            LinearGaussianSCM(**kwargs)


def test_confounders_may_be_partial_and_negative() -> None:
    scm = LinearGaussianSCM(CHAIN, {"X1": 0.1, "X2": 0.2, "X3": 0.3, "X4": 0.4}, {"X4": -0.5})
    np.testing.assert_array_equal(scm.confounder_weights, [0.0, 0.0, 0.0, -0.5])
    np.testing.assert_array_equal(scm.noise_std, [0.1, 0.2, 0.3, 0.4])
    assert scm.confounded
    assert not LinearGaussianSCM(CHAIN, confounders={"X4": 0.0}).confounded
    assert not LinearGaussianSCM.seed_graph(confounded=True, confounder_strength=0.0).confounded
    np.testing.assert_array_equal(
        LinearGaussianSCM.seed_graph(True, 0.25).confounder_weights, [0, 0.25, 0.25]
    )
    np.testing.assert_array_equal(LinearGaussianSCM.seed_graph().confounder_weights, [0, 0, 0])
    # One number for every variable, like noise_std, within [-1000, 1000] (both bounds included).
    for weight in (-1000.0, -0.5, 1000.0):
        np.testing.assert_array_equal(
            LinearGaussianSCM(CHAIN, confounders=weight).confounder_weights, [weight] * 4
        )
    with pytest.raises(ValueError, match=r"^confounders must be a number in \[-1000, 1000\], got -1000.5$"):
        LinearGaussianSCM(CHAIN, confounders=-1000.5)


@pytest.mark.parametrize("seed", range(6))
def test_random_dags_follow_their_documented_ranges(seed: int) -> None:
    scm = LinearGaussianSCM.random_dag(7, 0.5, seed=seed)
    edges = scm.weights[scm.weights != 0]
    assert np.all((np.abs(edges) >= 0.5) & (np.abs(edges) <= 1.0))
    assert np.all((scm.noise_std >= 0.3) & (scm.noise_std <= 0.6))
    targets = np.flatnonzero(scm.action_weights)
    assert len(targets) == 1 and 1 <= targets[0] <= 5  # one of X2 .. X6
    assert 0.5 <= scm.action_weights[targets[0]] <= 1.0
    assert "X7" in scm.descendants("a")
    assert LinearGaussianSCM.random_dag(7, 0.5, seed=seed).variables == scm.variables


def test_random_dag_weights_vary_in_sign_and_magnitude() -> None:
    scms = [LinearGaussianSCM.random_dag(7, 0.5, seed=seed) for seed in range(6)]
    edges = np.concatenate([scm.weights[scm.weights != 0] for scm in scms])
    assert np.any(edges < 0) and np.any(edges > 0)  # random signs
    assert len(np.unique(np.abs(edges))) == len(edges)  # magnitudes drawn from [0.5, 1], not fixed
    actions = [scm.action_weights[scm.action_weights != 0][0] for scm in scms]
    assert len(set(actions)) == len(actions) and all(0.5 <= w < 1.0 for w in actions)
    # The defaults: 6 variables, edge probability 0.3, seed 0, no confounder (strength 0.5 when asked).
    default = LinearGaussianSCM.random_dag()
    np.testing.assert_array_equal(default.weights, LinearGaussianSCM.random_dag(6, 0.3, 0).weights)
    np.testing.assert_array_equal(
        default.action_weights, LinearGaussianSCM.random_dag(6, 0.3, 0).action_weights
    )
    assert not default.confounded
    assert not LinearGaussianSCM.random_dag(6, 0.3, 0, confounded=False, confounder_strength=0.7).confounded
    assert set(LinearGaussianSCM.random_dag(confounded=True).confounder_weights) == {0.0, 0.5}


def test_random_dag_edge_probability_extremes_and_arguments() -> None:
    empty = LinearGaussianSCM.random_dag(5, 0.0, seed=3)
    target = int(np.flatnonzero(empty.action_weights)[0])
    expected = np.zeros((5, 5), int)
    expected[target, 4] = 1  # the one edge added so that the action reaches the last variable
    np.testing.assert_array_equal(empty.adjacency, expected)
    full = LinearGaussianSCM.random_dag(5, 1.0, seed=3)
    np.testing.assert_array_equal(full.adjacency, np.triu(np.ones((5, 5), int), k=1))
    assert LinearGaussianSCM.random_dag().n_vars == 6  # the defaults: 6 variables
    assert np.count_nonzero(LinearGaussianSCM.random_dag(seed=0, confounded=True).confounder_weights) == 2
    confounded = LinearGaussianSCM.random_dag(6, 0.3, seed=1, confounded=True, confounder_strength=0.7)
    target = int(np.flatnonzero(confounded.action_weights)[0])
    np.testing.assert_array_equal(np.flatnonzero(confounded.confounder_weights), [target, 5])
    assert set(confounded.confounder_weights[[target, 5]]) == {0.7}
    for kwargs, match in (
        ({"n_vars": 2}, "n_vars"),
        ({"n_vars": 51}, "n_vars"),
        ({"edge_prob": -0.1}, "edge_prob"),
        ({"seed": -1}, "seed"),
        ({"confounder_strength": 1001.0}, "confounder_strength"),
    ):
        with pytest.raises(ValueError, match="^" + match):
            LinearGaussianSCM.random_dag(**kwargs)
    LinearGaussianSCM.random_dag(n_vars=50, seed=0)  # the largest allowed
    with pytest.raises(ValueError, match="^confounder_strength"):
        LinearGaussianSCM.seed_graph(True, -0.5)
    for make, kwargs, message in (
        (
            LinearGaussianSCM.random_dag,
            {"edge_prob": 1.5},
            r"edge_prob must be a number in \[0, 1\], got 1.5",
        ),
        (
            LinearGaussianSCM.random_dag,
            {"confounder_strength": -0.1},
            r"confounder_strength must be a number in \[0, 1000\], got -0.1",
        ),
        (
            LinearGaussianSCM.seed_graph,
            {"confounder_strength": 1000.5},
            r"confounder_strength must be a number in \[0, 1000\], got 1000.5",
        ),
    ):
        with pytest.raises(ValueError, match="^" + message + "$"):
            make(**kwargs)


# ---------------------------------------------------------------------------- sampling
def test_sample_noise_and_realize_arguments() -> None:
    scm = LinearGaussianSCM.seed_graph()
    noise, hidden = scm.sample_noise(5, rng=0)
    assert noise.shape == (5, 3) and hidden.shape == (5,)
    np.testing.assert_array_equal(hidden, np.zeros(5))  # no confounder: no hidden draws
    confounded = LinearGaussianSCM.seed_graph(confounded=True)
    _, hidden = confounded.sample_noise(5, rng=0)
    assert np.all(hidden != 0)
    # Seeds are reproducible, and the same seed gives the same data for the same model.
    np.testing.assert_array_equal(scm.sample(4, rng=3), scm.sample(4, rng=3))
    assert scm.sample(1).shape == (1, 3)
    with pytest.raises(ValueError, match="^n must be"):
        scm.sample(0)
    with pytest.raises(ValueError, match=r"^noise must have shape \(n, 3\), got \(4, 2\)"):
        scm.realize(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^noise must have shape \(n, 3\), got \(3,\)"):
        scm.realize(np.zeros(3))
    # Without a confounder, the hidden values are ignored (not even checked).
    np.testing.assert_array_equal(
        scm.realize(np.ones((2, 3)), np.array([5.0, np.nan])), scm.realize(np.ones((2, 3)))
    )
    with pytest.raises(ValueError, match="^hidden must be finite"):
        confounded.realize(np.ones((2, 3)), np.array([5.0, np.nan]))
    np.testing.assert_allclose(confounded.realize(np.zeros((1, 3)), None, 1.0)[0], [0.0, 0.5, 0.4])
    np.testing.assert_allclose(confounded.realize(np.zeros((1, 3)), np.ones(1), 0.0)[0], [0.0, 0.5, 0.9])
    with pytest.raises(
        ValueError, match=r"^hidden must be a number or an array of shape \(2,\), got shape \(3,\)$"
    ):
        confounded.realize(np.ones((2, 3)), np.ones(3))
    # An action weight of exactly 1 adds the action like any other weight.
    unit = LinearGaussianSCM({"X1": {}, "X2": {"a": 1.0}})
    np.testing.assert_array_equal(
        unit.realize(np.zeros((2, 2)), None, np.array([0.7, -0.2])), [[0, 0.7], [0, -0.2]]
    )
    # sample's default action is 0: the structural equations with a = 0.
    noise, _ = scm.sample_noise(4, rng=3)
    np.testing.assert_array_equal(scm.sample(4, rng=3), scm.realize(noise, None, 0.0))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.nan, r"action must be finite, got nan"),
        (float("inf"), r"action must be finite, got inf"),
        ("x", r"action must be a finite number or an array of finite numbers, got 'x'"),
        ([1.0, [2.0]], "action must be a finite number or an array"),
        (10**400, "action must be a finite number or an array"),
        (np.ones(3), r"action must be a number or an array of shape \(2,\), got shape \(3,\)"),
        (np.ones((2, 1)), r"action must be a number or an array of shape \(2,\), got shape \(2, 1\)"),
        (np.array([1.0, np.inf]), "action must be finite"),
    ],
)
def test_sample_values_are_checked(value: object, match: str) -> None:
    with pytest.raises(ValueError, match="^" + match):
        LinearGaussianSCM.seed_graph().sample(2, action=value, rng=0)


def test_interventions_and_conditioning_arguments() -> None:
    scm = LinearGaussianSCM.seed_graph()
    noise = np.zeros((2, 3))
    np.testing.assert_allclose(
        scm.realize(noise, interventions={"X1": np.array([1.0, -1.0])})[:, 2], [0.86, -0.86]
    )
    np.testing.assert_allclose(scm.realize(noise, action=np.array([1.0, 2.0]))[:, 1], [0.5, 1.0])
    np.testing.assert_array_equal(scm.realize(noise, interventions={}), scm.realize(noise))
    with pytest.raises(
        ValueError, match=r"^interventions must be a mapping \{variable: value\}, got \[\('X2', 1.0\)\]"
    ):
        scm.sample(2, interventions=[("X2", 1.0)])
    with pytest.raises(
        ValueError, match=r"^interventions: unknown variable\(s\) \['U'\]; intervenable variables are"
    ):
        scm.interventional_mean({"U": 1.0})
    with pytest.raises(ValueError, match=r"^interventions\['X2'\] must be finite"):
        scm.interventional_mean({"X2": np.inf})
    with pytest.raises(ValueError, match=r"^given: unknown variable 'X7'; variables are"):
        scm.interventional_mean(given={"X7": 0.0})
    with pytest.raises(ValueError, match=r"^given: unknown variable 'X7'"):
        scm.interventional_covariance(given=["X7"])
    with pytest.raises(ValueError, match=r"^given\['X1'\] must be finite"):
        scm.interventional_mean(given={"X1": np.nan})
    # Conditioning on X3 as well: the Gaussian conditional mean of X2 given X1 and X3.
    cov = scm.interventional_covariance()
    mean = scm.interventional_mean(given={"X1": 0.0, "X3": 1.0})
    joint = cov[np.ix_([0, 2], [0, 2])]
    expected = cov[1, [0, 2]] @ np.linalg.solve(joint, [0.0, 1.0])
    assert mean[1] == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(mean[[0, 2]], [0.0, 1.0], atol=1e-12)
    conditional = scm.interventional_covariance(given=["X1", "X3"])
    assert conditional[1, 1] == pytest.approx(
        cov[1, 1] - cov[1, [0, 2]] @ np.linalg.solve(joint, cov[[0, 2], 1])
    )
    # Conditioning on X2, whose mean moves with the action: E[X1 | X2 = v, a] = Cov(X1, X2) /
    # Var(X2) (v - .5 a) with Cov = .7 * .25 and Var = .49 * .25 + .09, and E[X3] = .8 v + .3 E[X1].
    a, v = 1.0, np.array([1.5, -0.5])
    x1 = 0.175 / 0.2125 * (v - 0.5 * a)
    np.testing.assert_allclose(
        scm.interventional_mean(action=a, given={"X2": v}),
        np.column_stack([x1, v, 0.8 * v + 0.3 * x1]),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match=r"^action must be finite, got nan$"):
        scm.interventional_mean(action=np.nan)
    # Unconditional moments of the seed graph by hand.
    np.testing.assert_allclose(scm.interventional_mean(action=1.0), [0.0, 0.5, 0.4], atol=1e-12)
    var_x1, var_x2 = 0.25, 0.49 * 0.25 + 0.09
    assert cov[0, 0] == pytest.approx(var_x1) and cov[1, 1] == pytest.approx(var_x2)
    assert cov[0, 2] == pytest.approx(0.86 * var_x1)
    do_cov = scm.interventional_covariance({"X2": 1.0})
    assert do_cov[1, 1] == 0.0 and do_cov[2, 2] == pytest.approx(0.09 * 0.25 + 0.16)


# ---------------------------------------------------------------------------- the env
def test_do_actions_enumerate_variables_then_levels() -> None:
    env = CausalSCMEnv(graph=CHAIN, action_type="do", levels=(-1.0, 0.0, 2.0))
    assert env.outcome == "X4" and env.intervenable == ("X2", "X3") and env.action_space.n == 7
    env.reset(seed=0)
    decoded = [env.step(code)[4]["intervention"] for code in range(7)]
    assert decoded == [
        {}, {"X2": -1.0}, {"X2": 0.0}, {"X2": 2.0}, {"X3": -1.0}, {"X3": 0.0}, {"X3": 2.0},
    ]  # fmt: skip
    _, reward, terminated, truncated, info = env.step(6)
    assert info["variables"]["X3"] == 2.0 and info["variables"]["X4"] == pytest.approx(
        2.0 + info["variables"]["X4"] - 2.0
    )
    assert reward == pytest.approx(-((info["variables"]["X4"] - 1.0) ** 2))
    assert terminated is False and truncated is False and "a" not in info["variables"]
    with pytest.raises(ValueError, match="^action"):
        env.step(7)
    only = CausalSCMEnv(graph={"X1": {}, "X2": {"X1": 1.0, "a": 1.0}}, action_type="do")
    assert only.outcome == "X2" and only.intervenable == ("X2",) and only.action_space.n == 4
    chosen = CausalSCMEnv(graph=CHAIN, outcome="X3", intervenable=["X4", "X2"], action_type="do")
    assert chosen.intervenable == ("X4", "X2") and chosen.observed_variables == ("X1",)


def test_env_arguments_and_messages() -> None:
    cases = [
        (
            {"intervenable": "X2"},
            r"intervenable must be a non-empty sequence of variables from \('X2', 'X3'\), got 'X2'",
        ),
        ({"intervenable": ()}, "intervenable must be a non-empty sequence"),
        ({"intervenable": 3}, "intervenable must be a non-empty sequence"),
        ({"intervenable": ("X2", "X2")}, r"intervenable must not repeat a variable, got \('X2', 'X2'\)"),
        ({"levels": (1.0, 1.0)}, r"levels must be distinct, got \(1.0, 1.0\)"),
        ({"levels": 5}, "levels must be a non-empty sequence of finite numbers, got 5"),
        ({"levels": (2e6,)}, "levels"),
        ({"target": 2e6}, "target"),
        ({"confounded": "yes"}, "confounded must be one of"),
        (
            {"graph": "seed", "noise_std": 0.5},
            'noise_std applies to a mapping graph only; graph="seed" has its own noise',
        ),
        (
            {"graph": "random", "noise_std": 0.5},
            'noise_std applies to a mapping graph only; graph="random" has its own noise',
        ),
        ({"graph": "seed", "graph_seed": -1}, "graph_seed"),
        ({"graph": "seed", "n_vars": 51}, "n_vars"),
        (
            {"graph": ["X1"]},
            r'graph must be "seed", "random" or a mapping \{child: \{parent: weight\}\}, got \[\'X1\'\]',
        ),
        ({"graph": {f"X{i}": {} for i in range(51)}}, "graph may have at most 50 variables, got 51"),
        ({"graph": "circle"}, r"graph must be one of \('seed', 'random'\), got 'circle'$"),
        ({"levels": (-2e6,)}, r"levels must be a number in \[-1e\+06, 1e\+06\], got -2000000.0$"),
        # The random graph's arguments are checked whatever the graph.
        ({"n_vars": 2}, r"n_vars must be an integer in \[3, 50\], got 2$"),
        ({"edge_prob": -0.1}, r"edge_prob must be a number in \[0, 1\], got -0.1$"),
        ({"edge_prob": 1.5}, r"edge_prob must be a number in \[0, 1\], got 1.5$"),
        (
            {"graph": CHAIN, "confounder_strength": -0.1},
            r"confounder_strength must be a number in \[0, 1000\], got -0.1$",
        ),
        (
            {"graph": CHAIN, "confounder_strength": 1000.5},
            r"confounder_strength must be a number in \[0, 1000\], got 1000.5$",
        ),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match="^" + match):
            CausalSCMEnv(**kwargs)
    assert CausalSCMEnv(graph="random", n_vars=3).scm.n_vars == 3  # the bounds are inclusive
    fifty = {"X1": {}, "X2": {"X1": 1.0, "a": 1.0}, **{f"X{i}": {} for i in range(3, 51)}}
    assert CausalSCMEnv(graph=fifty).scm.n_vars == 50
    CausalSCMEnv(levels=(-1e6, 1e6), target=-1e6)  # the bounds are inclusive
    chain = {"X1": {}, "X2": {"X1": 1.0, "a": 1.0}}
    chain.update({f"X{i}": {f"X{i - 1}": 1000.0} for i in range(3, 14)})
    with pytest.raises(
        ValueError,
        match=r"^graph: with these edge weights, .* could reach 4e\+33 times .* the limit is 1e\+30",
    ):
        CausalSCMEnv(graph=chain)
    chain.popitem()
    chain.popitem()
    assert CausalSCMEnv(graph=chain).outcome == "X11"  # 1e27 times the noise: allowed
    with pytest.raises(ValueError, match="^graph: with these edge weights, .* the limit is 1e"):
        CausalSCMEnv(graph=chain, levels=(-1e6, 0.0))  # a large do level pushes it over


def test_mapping_graphs_with_noise_and_confounding() -> None:
    env = CausalSCMEnv(
        graph=CHAIN,
        noise_std={"X1": 0.1, "X2": 0.2, "X3": 0.3, "X4": 0.4},
        confounded=True,
        confounder_strength=0.6,
    )
    np.testing.assert_array_equal(env.scm.noise_std, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(env.scm.confounder_weights, [0.0, 0.6, 0.0, 0.6])  # action target, outcome
    np.testing.assert_array_equal(CausalSCMEnv(graph=CHAIN).scm.noise_std, np.ones(4))
    np.testing.assert_array_equal(CausalSCMEnv(graph=CHAIN, noise_std=0.5).scm.noise_std, np.full(4, 0.5))
    assert not CausalSCMEnv(graph=CHAIN).scm.confounded
    unit_noise = CausalSCMEnv(graph=CHAIN, confounded=True).scm  # noise_std defaults to 1 here too
    np.testing.assert_array_equal(unit_noise.noise_std, np.ones(4))
    np.testing.assert_array_equal(unit_noise.confounder_weights, [0.0, 0.5, 0.0, 0.5])
    random_confounded = CausalSCMEnv(graph="random", confounded=True, confounder_strength=0.7).scm
    assert random_confounded.confounded and set(random_confounded.confounder_weights) == {0.0, 0.7}
    assert not CausalSCMEnv(graph="random", confounder_strength=0.7).scm.confounded
    seed_env = CausalSCMEnv(confounded=True, confounder_strength=0.3)
    np.testing.assert_array_equal(seed_env.scm.confounder_weights, [0.0, 0.3, 0.3])
    random_env = CausalSCMEnv(graph="random", n_vars=5, edge_prob=0.6, graph_seed=2)
    np.testing.assert_array_equal(random_env.scm.weights, LinearGaussianSCM.random_dag(5, 0.6, 2).weights)
    assert CausalSCMEnv(graph="random").scm.n_vars == 6
    no_action = {"X1": {}, "X2": {"X1": 1.0}}
    with pytest.raises(ValueError, match="^graph: the action 'a' must be a parent of at least one variable"):
        CausalSCMEnv(graph=no_action, confounded=True)


def test_env_steps_reveal_the_context_and_count_time() -> None:
    env = CausalSCMEnv(render_mode="ansi")
    obs, info = env.reset(seed=0)
    assert info == {} and obs.dtype == np.float32 and obs.shape == (1,)
    assert env.render().splitlines() == [
        "t=0  outcome X3 -> target +1.000",
        f"observed now: X1={obs[0]:+.3f}",
    ]
    next_obs, reward, terminated, truncated, info = env.step(np.array([0.5], dtype=np.float32))
    variables = info["variables"]
    assert list(variables) == ["X1", "X2", "X3", "a"] and variables["a"] == 0.5
    assert variables["X1"] == pytest.approx(float(obs[0]), abs=1e-6)
    assert info["intervention"] == {} and terminated is False and truncated is False
    lines = env.render().splitlines()
    assert lines[0] == "t=1  outcome X3 -> target +1.000"
    assert lines[1] == f"observed now: X1={next_obs[0]:+.3f}"
    values = "  ".join(f"{k}={v:+.3f}" for k, v in variables.items())
    assert lines[2] == f"last step: {values}  [no intervention]  reward={reward:+.3f}"
    env.step(np.array([5.0], dtype=np.float32))  # clipped to 1
    assert env.render().startswith("t=2 ")
    assert env._last["variables"]["a"] == 1.0
    env.reset()
    assert env.render().startswith("t=0 ") and len(env.render().splitlines()) == 2
    do_env = CausalSCMEnv(render_mode="ansi", action_type="do", target=-0.5)
    do_env.reset(seed=1)
    do_env.step(3)
    text = do_env.render().splitlines()
    assert text[0] == "t=1  outcome X3 -> target -0.500"
    assert text[2].endswith(f"[do(X2:=+1)]  reward={do_env._last['reward']:+.3f}")
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)$"):
        CausalSCMEnv().step(np.zeros(1, dtype=np.float32))
    with pytest.raises(gym.error.ResetNeeded):
        CausalSCMEnv(render_mode="ansi").render()
    with pytest.raises(
        ValueError, match=r"^unknown reset option\(s\) \['physics'\]; allowed options are \(\)$"
    ):
        CausalSCMEnv().reset(options={"physics": {}})


def test_each_step_realizes_the_noise_drawn_for_it() -> None:
    """A step solves the model for ``scm.sample_noise(1, np_random)`` drawn after the previous step
    (or the reset): the same numbers as a generator seeded like the reset. A no-op and a ``do``
    leave the action at 0; the hidden confounder enters the realized values."""
    cases = (
        ({"confounded": True}, [np.array([0.3], np.float32), np.array([-0.8], np.float32)], None),
        (
            {"graph": CHAIN, "action_type": "do", "confounded": True},
            [0, 4, 1],
            [{}, {"X3": -1.0}, {"X2": -1.0}],
        ),
    )
    for kwargs, actions, interventions in cases:
        env = CausalSCMEnv(**kwargs)
        obs, _ = env.reset(seed=11)
        rng = np.random.default_rng(11)
        for k, action in enumerate(actions):
            noise, hidden = env.scm.sample_noise(1, rng)
            assert np.any(hidden != 0)
            np.testing.assert_array_equal(obs, env.scm.realize(noise, hidden)[0, :1].astype(np.float32))
            a = 0.0 if interventions else float(action[0])
            expected = env.scm.realize(noise, hidden, a, interventions[k] if interventions else None)[0]
            obs, _, _, _, info = env.step(action)
            assert [info["variables"][v] for v in env.scm.variables] == expected.tolist()


def test_ansi_lists_every_observed_variable() -> None:
    env = CausalSCMEnv(graph={"X1": {}, "X2": {}, "X3": {"X1": 1.0, "X2": 1.0, "a": 1.0}}, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.observed_variables == ("X1", "X2")
    assert env.render().splitlines()[1] == f"observed now: X1={obs[0]:+.3f}  X2={obs[1]:+.3f}"


def test_expected_reward_and_optimal_action_shapes() -> None:
    env = CausalSCMEnv()
    obs = np.zeros((2, 3, 1))
    assert env.expected_reward(obs, np.zeros((2, 3, 1))).shape == (2, 3)
    assert env.optimal_action(obs).shape == (2, 3, 1)
    # Actions beyond the box count as clipped.
    for beyond, edge in ((4.0, 1.0), (3.0, 1.0), (-4.0, -1.0)):
        np.testing.assert_allclose(
            env.expected_reward(obs[0], np.full((3, 1), beyond)),
            env.expected_reward(obs[0], np.full((3, 1), edge)),
        )
    with pytest.raises(ValueError, match="^obs"):
        env.expected_reward(np.zeros((2, 2)), np.zeros((2, 1)))
    do_env = CausalSCMEnv(action_type="do")
    x1 = np.array([[0.0], [1.0]])
    codes = np.array([0, 3])
    # No-op: E[X3 | X1] = .86 X1, Var = .8^2 .3^2 + .4^2; do(X2 := 1): .8 + .3 X1, Var = .4^2.
    expected = [-((0.0 - 1.0) ** 2 + 0.2176), -((0.8 + 0.3 - 1.0) ** 2 + 0.16)]
    values = do_env.expected_reward(x1, codes)
    assert values.dtype == np.float64 and values.shape == (2,)
    np.testing.assert_allclose(values, expected, atol=1e-12)
    np.testing.assert_array_equal(do_env.optimal_action(np.zeros((2, 3, 1))), np.full((2, 3), 3))
    assert do_env.expected_reward(np.zeros((2, 3, 1)), np.zeros((2, 3), int)).shape == (2, 3)
    np.testing.assert_allclose(
        do_env.expected_reward(x1, np.array(2)), -((0.3 * x1[:, 0] - 1.0) ** 2 + 0.16), atol=1e-12
    )


# ---------------------------------------------------------------------------- rendering
def test_layered_layout_columns_are_longest_path_depths() -> None:
    scm = LinearGaussianSCM.seed_graph(confounded=True)
    positions, extent = layered_layout(scm, True)
    # Column 0 holds the action and X1 (spread over the height 1), X2 and X3 are lone nodes
    # staggered by 0.3 of the height: up in odd columns, down in even ones; U above its targets.
    assert positions == {
        "a": (0.0, 1.0),
        "X1": (0.0, 0.0),
        "X2": (1.0, 0.8),
        "X3": (2.0, 0.2),
        "U": (1.5, 1.6),
    }
    assert extent == (2.0, 1.0)
    positions, extent = layered_layout(LinearGaussianSCM.seed_graph(), False)
    assert positions == {"X1": (0.0, -0.3), "X2": (1.0, 0.3), "X3": (2.0, -0.3)} and extent == (2.0, 1.0)
    wide = LinearGaussianSCM({"A": {}, "B": {}, "C": {}, "D": {"A": 1.0, "a": 1.0}})
    positions, extent = layered_layout(wide, True)
    assert [positions[n] for n in ("a", "A", "B", "C")] == [(0.0, 3.0), (0.0, 2.0), (0.0, 1.0), (0.0, 0.0)]
    assert positions["D"] == (1.0, 1.5 + 0.9) and extent == (1.0, 3.0)
    deep = LinearGaussianSCM({"A": {}, "B": {"A": 1.0}, "C": {"B": 1.0, "A": 1.0, "a": 1.0}})
    assert layered_layout(deep, True)[0]["C"][0] == 2.0  # the longest path, not the shortest


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / (d @ d), 0.0, 1.0)
    return np.hypot(xs - a[0] - t * d[0], ys - a[1] - t * d[1])


@pytest.mark.parametrize(
    ("start", "end"), [((0.0, 0.0), (2.0, 0.0)), ((0.0, 1.0), (0.0, 2.5)), ((0.2, 0.3), (1.4, 2.2))]
)
def test_arrows_have_a_shortened_shaft_and_two_wings(start: tuple, end: tuple) -> None:
    """Shaft from 0.25 after the start to the tip 0.28 before the end; wings 0.14 back, 0.08 aside."""
    canvas = Canvas(400, 400, (-1.0, 3.0), (-1.0, 3.0))
    arrow(canvas, start, end, (10, 20, 30))
    a, b = np.array(start), np.array(end)
    u = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-u[1], u[0]])
    tip = b - 0.28 * u
    segments = [
        (a + 0.25 * u, tip),
        (tip, tip - 0.14 * u + 0.08 * normal),
        (tip, tip - 0.14 * u - 0.08 * normal),
    ]
    xs = (np.arange(400) + 0.5)[None, :] / 100 - 1.0
    ys = 3.0 - (np.arange(400) + 0.5)[:, None] / 100
    distance = np.min([_segment_distance(xs, ys, p, q) for p, q in segments], axis=0)
    ink = np.all(canvas.image == (10, 20, 30), axis=-1)
    assert np.all(ink[distance <= 0.017]) and not np.any(ink[distance >= 0.023])


def test_zero_length_arrows_draw_nothing() -> None:
    canvas = Canvas(50, 50, (0.0, 5.0), (0.0, 5.0))
    arrow(canvas, (1.0, 1.0), (1.0, 1.0), (0, 0, 0))
    assert np.all(canvas.image == 255)
    arrow(canvas, (1.0, 1.0), (2.0, 1.0), (0, 0, 0))  # length 1: drawn
    assert np.any(canvas.image == 0)


def test_value_colours_saturate_at_two() -> None:
    assert value_color(None) == (190, 190, 190)
    assert value_color(0.0) == (255, 255, 255)
    assert value_color(1.0) == (255, 127, 127) and value_color(-1.0) == (127, 127, 255)
    assert value_color(2.0) == value_color(7.0) == (255, 0, 0)
    assert value_color(-2.0) == value_color(-7.0) == (0, 0, 255)
    assert value_color(0.5) == (255, 191, 191)


def _pixel(frame: np.ndarray, env: CausalSCMEnv, x: float, y: float) -> tuple[int, ...]:
    """The pixel at world point (x, y) of a frame of ``env`` (the seed graph: 110 px per unit)."""
    (_, y_max) = env._layout[1]
    y_top = y_max + (1.0 if "U" in env._layout[0] else 0.6)
    return tuple(int(v) for v in frame[int((y_top - y) * 110), int((x + 0.7) * 110)])


def test_frame_colours_nodes_by_their_values() -> None:
    env = CausalSCMEnv(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (round(110 * 2.5), round(110 * 3.4), 3) and frame.dtype == np.uint8
    positions = env._layout[0]
    assert _pixel(frame, env, *positions["X1"]) == value_color(float(obs[0]))
    assert _pixel(frame, env, *positions["X2"]) == (190, 190, 190)  # not realized yet
    assert _pixel(frame, env, *positions["a"]) == (190, 190, 190)
    x, y = positions["X3"]
    assert _pixel(frame, env, x + 0.245, y) == (0, 150, 0)  # the outcome's green ring
    x, y = positions["X2"]
    assert _pixel(frame, env, x + 0.215, y) == (60, 60, 60)  # a plain ring
    x, y = positions["a"]
    assert _pixel(frame, env, x + 0.2, y) == (40, 40, 40)  # the action's square frame
    assert _pixel(frame, env, x + 0.2, y + 0.2) == (40, 40, 40)  # square, not round
    # The outcome strip: the target (1.0) marked green on [-3, 3] drawn over [0, x_max].
    assert _pixel(frame, env, (1.0 + 3.0) / 3.0, -0.7) == (0, 150, 0)
    assert _pixel(frame, env, 0.5, -0.6) == (120, 120, 120)
    # An edge X1 -> X3 (drawn dark grey) passes its midpoint.
    mid = np.add(positions["X1"], positions["X3"]) / 2
    assert _pixel(frame, env, *mid) == (90, 90, 90)
    _, _, _, _, info = env.step(np.array([-0.7], dtype=np.float32))
    frame = env.render()
    values = info["variables"]
    for name in ("X2", "X3"):
        assert _pixel(frame, env, *positions[name]) == value_color(values[name])
    assert _pixel(frame, env, *positions["a"]) == value_color(-0.7)
    outcome_x = (np.clip(values["X3"], -3, 3) + 3.0) / 3.0
    assert _pixel(frame, env, outcome_x, -0.6) == (200, 40, 40)


def test_frame_shows_interventions_and_the_confounder() -> None:
    env = CausalSCMEnv(render_mode="rgb_array", action_type="do", confounded=True)
    env.reset(seed=0)
    positions = env._layout[0]
    assert "a" not in positions and positions["U"] == (1.5, 1.6)  # no action node for do actions
    frame = env.render()
    assert frame.shape[0] == round(110 * 2.9)
    assert _pixel(frame, env, *positions["U"]) == (200, 185, 220)
    u_to_x3 = np.add(positions["U"], positions["X3"]) / 2
    assert _pixel(frame, env, *u_to_x3) == (170, 120, 200)  # edges from U are purple
    env.step(3)  # do(X2 := 1): X2's incoming edges fade, its ring turns black
    frame = env.render()
    x, y = positions["X2"]
    assert _pixel(frame, env, x, y) == value_color(1.0)
    assert _pixel(frame, env, x + 0.245, y) == (0, 0, 0)
    x1_to_x2 = np.add(positions["X1"], positions["X2"]) / 2
    assert _pixel(frame, env, *x1_to_x2) == (215, 215, 215)
    u_to_x2 = np.add(positions["U"], positions["X2"]) / 2
    assert _pixel(frame, env, *u_to_x2) == (215, 215, 215)


def test_large_graphs_are_drawn_within_the_frame_limit() -> None:
    env = CausalSCMEnv(graph="random", n_vars=50, edge_prob=0.05, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert max(frame.shape[:2]) <= 1600 and max(frame.shape[:2]) >= 1590


# ---------------------------------------------------------------------------- discovery
def test_discovery_argument_checks() -> None:
    data = np.random.default_rng(0).standard_normal((40, 3))
    for bad, match in (
        (data[:, 0], r"data must have shape \(n_samples, d\) with d >= 2 and n_samples > d, got \(40,\)"),
        (data[:, :1], r"data must have shape .* got \(40, 1\)"),
        (data[:3], r"data must have shape .* got \(3, 3\)"),
    ):
        with pytest.raises(ValueError, match="^" + match):
            pc(bad)
    nan = data.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^data must be finite \(no NaN or inf\)"):
        pc(nan)
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="^alpha"):
            pc(data, alpha=alpha)
    with pytest.raises(ValueError, match=r"^alpha must be a number in \(0, 1\], got 1.5$"):
        pc(data, alpha=1.5)
    with pytest.raises(ValueError, match=r"^alpha must be in \(0, 1\), got 1.0$"):
        pc(data, alpha=1.0)
    with_none = data.tolist()
    with_none[0][0] = None  # read as NaN
    with pytest.raises(ValueError, match=r"^data must be finite \(no NaN or inf\)$"):
        pc(with_none)
    with pytest.raises(ValueError, match="^indep_test"):
        pc(data, indep_test="pearson")
    with pytest.raises(ValueError, match=r"^node_names must be 3 distinct names, got \['a', 'a', 'b'\]"):
        pc(data, node_names=["a", "a", "b"])
    with pytest.raises(ValueError, match="^node_names must be 3 distinct names"):
        pc(data, node_names=["a", "b"])
    with pytest.raises(ValueError, match="^exogenous"):
        pc(data, exogenous=["X9"])
    with pytest.raises(ValueError, match="^n_steps"):
        random_policy_data(gym.make("AdvRL/CausalSCM-v0"), 0)
    with pytest.raises(ValueError, match='^random_policy_data needs an env with action_type="additive"'):
        random_policy_data(gym.make("AdvRL/CausalSCM-v0", action_type="do"), 10)
    for bad in (np.zeros(3), np.zeros((2, 3)), np.full((2, 2), 2)):
        with pytest.raises(ValueError, match="^estimated must be a square 0/1 adjacency matrix"):
            shd(bad, np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="^true must be a square 0/1 adjacency matrix"):
        shd(np.zeros((2, 2), int), np.full((2, 2), 3))
    with pytest.raises(ValueError, match=r"^dag must be a square 0/1 adjacency matrix, got shape \(2, 3\)$"):
        cpdag(np.zeros((2, 3), int))
    # shd counts pairs of distinct variables: the diagonal (a self-loop) is no pair.
    assert shd(np.eye(3, dtype=int), np.zeros((3, 3), int)) == 0
    # random_policy_data: one step is enough; an env without action_type is refused like a do env.
    data, _ = random_policy_data(gym.make("AdvRL/CausalSCM-v0"), 1)
    assert data.shape == (1, 4)

    class ModelOnly(gym.Env):
        scm = LinearGaussianSCM.seed_graph()

    with pytest.raises(ValueError, match='^random_policy_data needs an env with action_type="additive"$'):
        random_policy_data(ModelOnly(), 10)


def test_pc_on_two_variables() -> None:
    x = np.random.default_rng(0).standard_normal(300)
    y = x + 0.3 * np.random.default_rng(1).standard_normal(300)
    np.testing.assert_array_equal(pc(np.column_stack([x, y])), [[0, 1], [1, 0]])  # one undirected edge


def test_pc_passes_its_arguments_to_causal_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    _, background_knowledge, graph_node, dag, dag2cpdag = discovery._causal_learn()
    calls = []

    def fake_pc(data: np.ndarray, **kwargs) -> SimpleNamespace:
        calls.append((data, kwargs))
        marks = np.zeros((3, 3), int)
        marks[0, 1], marks[1, 0] = -1, 1  # X1 -> X2 in causal-learn's endpoint marks
        return SimpleNamespace(G=SimpleNamespace(graph=marks))

    monkeypatch.setattr(
        discovery, "_causal_learn", lambda: (fake_pc, background_knowledge, graph_node, dag, dag2cpdag)
    )
    data = np.arange(12).reshape(4, 3)  # integers: passed on as float64
    estimated = pc(data)
    passed, kwargs = calls[-1]
    assert passed.dtype == np.float64 and np.array_equal(passed, data)
    assert kwargs == {
        "alpha": 0.01,
        "indep_test": "fisherz",
        "stable": True,
        "background_knowledge": None,
        "show_progress": False,
        "node_names": ["X1", "X2", "X3"],
    }
    np.testing.assert_array_equal(estimated, [[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert estimated.dtype.kind == "i"
    pc(data, alpha=0.2, indep_test="kci", node_names=("a", "b", "c"), exogenous=["a"], stable=False)
    _, kwargs = calls[-1]
    knowledge = kwargs.pop("background_knowledge")
    assert kwargs == {
        "alpha": 0.2,
        "indep_test": "kci",
        "stable": False,
        "show_progress": False,
        "node_names": ["a", "b", "c"],
    }
    # Exogenous variables in tier 0, the others in tier 1: no edge may point into tier 0.
    assert {node.get_name(): tier for node, tier in knowledge.tier_value_map.items()} == {
        "a": 0,
        "b": 1,
        "c": 1,
    }


def test_causal_learn_endpoint_marks_become_adjacency() -> None:
    # 0 -> 1 (tail at 0, arrow at 1), 1 - 2 undirected (tails), 2 <-> 3 bidirected, 0 and 3 apart.
    marks = np.array([[0, -1, 0, 0], [1, 0, -1, 0], [0, -1, 0, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(
        _from_causal_learn(marks), [[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    )
    assert _from_causal_learn(marks).dtype.kind == "i"


def test_random_policy_data_spans_episodes_and_exogenous_orients_the_action() -> None:
    env = gym.make("AdvRL/CausalSCM-v0")
    data, names = random_policy_data(env, 120, seed=3)  # more than the 50-step episodes
    assert data.shape == (120, 4) and names == ("a", "X1", "X2", "X3")
    assert np.all(np.abs(data[:, 0]) <= 1.0) and len(np.unique(data[:, 0])) == 120
    again, _ = random_policy_data(gym.make("AdvRL/CausalSCM-v0"), 120, seed=3)
    np.testing.assert_array_equal(data, again)
    default, _ = random_policy_data(gym.make("AdvRL/CausalSCM-v0"), 5)  # seed 0 by default
    np.testing.assert_array_equal(default, random_policy_data(gym.make("AdvRL/CausalSCM-v0"), 5, seed=0)[0])
    # A new episode starts after each truncation: 7 steps of 3-step episodes take 1 + 2 resets.
    resets = []

    class CountResets(gym.Wrapper):
        def reset(self, **kwargs) -> tuple:
            resets.append(kwargs)
            return self.env.reset(**kwargs)

    random_policy_data(CountResets(gym.make("AdvRL/CausalSCM-v0", max_episode_steps=3)), 7, seed=2)
    assert resets == [{"seed": 2}, {}, {}]
    big, _ = random_policy_data(env, 1000, seed=0)
    estimated = pc(big[:, :3], alpha=0.01, node_names=names[:3], exogenous=["a"])
    # a -> X2 <- X1 is a collider anyway; the background knowledge keeps every edge out of a.
    assert estimated[0].tolist() == [0, 0, 1] and estimated[:, 0].tolist() == [0, 0, 0]


def test_frame_details_action_square_rings_and_outcome_strip() -> None:
    env = CausalSCMEnv(render_mode="rgb_array")
    env.reset(seed=0)
    a = env.step(np.array([0.8], dtype=np.float32))[4]["variables"]["a"]
    frame = env.render()
    positions = env._layout[0]
    white, dark = (255, 255, 255), (40, 40, 40)
    x, y = positions["a"]
    # The action: a dark 0.44 square framing a 0.34 square of its value's colour.
    assert _pixel(frame, env, x, y) == value_color(a)
    assert _pixel(frame, env, x - 0.2, y) == dark and _pixel(frame, env, x + 0.2, y) == dark
    assert _pixel(frame, env, x, y - 0.2) == dark and _pixel(frame, env, x, y + 0.2) == dark
    assert _pixel(frame, env, x - 0.15, y) == value_color(a) and _pixel(
        frame, env, x, y + 0.15
    ) == value_color(a)
    for dx, dy in ((-0.3, 0.0), (0.3, 0.0), (0.0, -0.3), (0.0, 0.3)):
        assert _pixel(frame, env, x + dx, y + dy) != dark
    # Its edge into X2 is drawn like every other edge.
    mid = np.add(positions["a"], positions["X2"]) / 2
    assert _pixel(frame, env, *mid) == (90, 90, 90)
    # Plain nodes have a 0.23 ring, the outcome a 0.26 one.
    x, y = positions["X2"]
    assert _pixel(frame, env, x + 0.245, y) == white
    # The strip (y in [-0.62, -0.58]) and the target mark (0.06 wide, y in [-0.75, -0.45]).
    assert _pixel(frame, env, 0.5, -0.66) == white and _pixel(frame, env, 0.5, -0.56) == white
    mark = (1.0 + 3.0) / 3.0
    assert _pixel(frame, env, mark, -0.72) == (0, 150, 0) and _pixel(frame, env, mark, -0.48) == (0, 150, 0)
    assert _pixel(frame, env, mark, -0.8) == white and _pixel(frame, env, mark, -0.4) == white
    assert _pixel(frame, env, mark + 0.06, -0.5) == white and _pixel(frame, env, mark - 0.06, -0.5) == white


@pytest.mark.parametrize(("level", "edge"), [(5.0, 2.0), (-5.0, 0.0)])
def test_frame_clips_the_last_outcome_to_the_strip(level: float, edge: float) -> None:
    env = CausalSCMEnv(render_mode="rgb_array", action_type="do", levels=(level,))
    env.reset(seed=0)
    _, _, _, _, info = env.step(1)  # do(X2 := level): X3 is far beyond +-3
    assert abs(info["variables"]["X3"]) > 3.2
    frame = env.render()
    assert _pixel(frame, env, edge, -0.6) == (200, 40, 40)  # drawn at the end of the strip


def test_long_chains_are_drawn_at_most_1600_pixels_wide() -> None:
    chain = {"X1": {}, "X2": {"X1": 0.5, "a": 1.0}}
    chain.update({f"X{i}": {f"X{i - 1}": 0.5} for i in range(3, 21)})
    env = CausalSCMEnv(graph=chain, render_mode="rgb_array")
    env.reset(seed=0)
    (x_max, y_max) = env._layout[1]
    assert (x_max, y_max) == (19.0, 1.0)
    px = 1600 / (19.0 + 1.4)
    assert env.render().shape == (round(px * (1.6 + 0.9)), 1600, 3)
