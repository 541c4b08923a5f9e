"""Causal discovery on data from the causal env: the PC algorithm (causal-learn) and SHD.

causal-learn is the optional ``[causal]`` extra (``pip install "gym-advrl[causal]"``); it is
imported only when :func:`pc` is called, so the rest of ``gym_advrl`` never needs it.

Graphs are ``(d, d)`` 0/1 adjacency matrices: ``A[i, j] = 1`` and ``A[j, i] = 0`` is the directed
edge ``i -> j``; ``A[i, j] = A[j, i] = 1`` is an edge whose direction is undetermined (a CPDAG's
undirected edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from gym_advrl.envs.causal.scm import ACTION
from gym_advrl.utils.validation import check_choice, check_float, check_int

INDEPENDENCE_TESTS = ("fisherz", "kci", "chisq", "gsq")


def pc(
    data: np.ndarray,
    alpha: float = 0.01,
    indep_test: str = "fisherz",
    node_names: Sequence[str] | None = None,
    exogenous: Sequence[str] = (),
    stable: bool = True,
) -> np.ndarray:
    """Estimate a CPDAG with the PC algorithm (Spirtes, Glymour and Scheines) from causal-learn.

    Args:
        data: ``(n_samples, d)`` observations, one column per variable.
        alpha: significance level of the conditional-independence tests, in ``(0, 1)``.
        indep_test: ``"fisherz"`` (linear-Gaussian data, the default), ``"kci"``, ``"chisq"`` or ``"gsq"``.
        node_names: a name per column (default ``X1 .. Xd``); needed to name ``exogenous`` ones.
        exogenous: variables known to have no causes among the others (e.g. the randomized action
            ``"a"``): no edge may point into them. PC orients through colliders at the action
            anyway; this background knowledge also orients edges incident to the action.
        stable: order-independent (stable) skeleton search.

    Returns:
        ``(d, d)`` int adjacency of the estimated CPDAG (see the module docstring).

    Raises:
        ImportError: if causal-learn is not installed.
        ValueError: on malformed data or arguments.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] < 2 or data.shape[0] <= data.shape[1]:
        raise ValueError(
            f"data must have shape (n_samples, d) with d >= 2 and n_samples > d, got {data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("data must be finite (no NaN or inf)")
    alpha = check_float("alpha", alpha, 0.0, 1.0, low_inclusive=False)
    if alpha >= 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    check_choice("indep_test", indep_test, INDEPENDENCE_TESTS)
    d = data.shape[1]
    names = [f"X{i + 1}" for i in range(d)] if node_names is None else [str(n) for n in node_names]
    if len(names) != d or len(set(names)) != d:
        raise ValueError(f"node_names must be {d} distinct names, got {node_names!r}")
    for name in exogenous:
        check_choice("exogenous", name, names)

    pc_search, background_knowledge, graph_node = _causal_learn()[:3]
    knowledge = None
    if exogenous:
        knowledge = background_knowledge()
        for name in names:
            knowledge.add_node_to_tier(graph_node(name), 0 if name in exogenous else 1)
    graph = pc_search(
        data,
        alpha=alpha,
        indep_test=indep_test,
        stable=stable,
        background_knowledge=knowledge,
        show_progress=False,
        node_names=names,
    ).G.graph
    return _from_causal_learn(graph)


def cpdag(dag: np.ndarray) -> np.ndarray:
    """The CPDAG (Markov equivalence class) of a DAG: what observational data can identify at best.

    Edges whose direction is shared by every DAG in the class stay directed, the others become
    undirected. A useful reference for :func:`shd`: PC on observational data targets the CPDAG.

    Raises:
        ImportError: if causal-learn is not installed.
    """
    dag = _as_adjacency("dag", dag)
    _, _, graph_node, dag_class, dag2cpdag = _causal_learn()
    nodes = [graph_node(f"X{i + 1}") for i in range(len(dag))]
    graph = dag_class(nodes)
    for i, j in zip(*np.nonzero(dag), strict=True):
        graph.add_directed_edge(nodes[i], nodes[j])
    return _from_causal_learn(dag2cpdag(graph).graph)


def _from_causal_learn(graph: np.ndarray) -> np.ndarray:
    """causal-learn's endpoint matrix to our adjacency.

    ``graph[i, j]`` is the endpoint mark at ``i`` of the edge ``i - j`` (-1 tail, 1 arrow, 0 none):
    ``graph[i, j] == -1`` and ``graph[j, i] == 1`` is ``i -> j``. Any other mark pattern (an undirected
    tail-tail edge, or a bidirected/partial edge left by conflicting orientations) is reported as
    an undirected edge, so that :func:`shd` counts it as unoriented rather than missing.
    """
    graph = np.asarray(graph)
    adjacent = (graph != 0) | (graph.T != 0)
    directed = (graph == -1) & (graph.T == 1)
    return (adjacent & ~directed.T).astype(int)


def shd(estimated: np.ndarray, true: np.ndarray) -> int:
    """Structural Hamming distance between two graphs on the same variables.

    The number of variable pairs whose connection differs: a missing edge, an extra edge, a reversed
    edge, or an undirected edge where the other graph has a directed one each count once.
    """
    estimated = _as_adjacency("estimated", estimated)
    true = _as_adjacency("true", true)
    if estimated.shape != true.shape:
        raise ValueError(
            f"estimated and true must have the same shape, got {estimated.shape} and {true.shape}"
        )
    differs = (estimated != true) | (estimated.T != true.T)
    return int(np.triu(differs, k=1).sum())


def random_policy_data(env: gym.Env, n_steps: int, seed: int = 0) -> tuple[np.ndarray, tuple[str, ...]]:
    """Roll out a uniformly random policy and stack the realized variables of every step.

    Args:
        env: an ``AdvRL/CausalSCM-v0`` environment (wrapped or not) with ``action_type="additive"``.
        n_steps: number of environment steps (episodes are reset as they end).
        seed: seeds the environment and the action space.

    Returns:
        ``(data, names)``: ``(n_steps, 1 + d)`` values of ``("a",) + variables`` and those names.
    """
    n_steps = check_int("n_steps", n_steps, 1)
    scm = env.unwrapped.scm
    if getattr(env.unwrapped, "action_type", None) != "additive":
        raise ValueError('random_policy_data needs an env with action_type="additive"')
    names = (ACTION, *scm.variables)
    rows = np.empty((n_steps, len(names)))
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for t in range(n_steps):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        rows[t] = [info["variables"][name] for name in names]
        if terminated or truncated:
            env.reset()
    return rows, names


def _as_adjacency(name: str, graph: Any) -> np.ndarray:
    graph = np.asarray(graph)
    if graph.ndim != 2 or graph.shape[0] != graph.shape[1] or not np.isin(graph, (0, 1)).all():
        raise ValueError(f"{name} must be a square 0/1 adjacency matrix, got shape {graph.shape}")
    return graph.astype(bool)


def _causal_learn() -> tuple[Any, ...]:
    """(pc, BackgroundKnowledge, GraphNode, Dag, dag2cpdag), imported on first use."""
    try:
        from causallearn.graph.Dag import Dag
        from causallearn.graph.GraphNode import GraphNode
        from causallearn.search.ConstraintBased.PC import pc as pc_search
        from causallearn.utils.DAG2CPDAG import dag2cpdag
        from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge
    except ImportError as err:
        raise ImportError(
            'causal discovery needs causal-learn, the optional [causal] extra: pip install "gym-advrl[causal]"'
        ) from err
    return pc_search, BackgroundKnowledge, GraphNode, Dag, dag2cpdag
