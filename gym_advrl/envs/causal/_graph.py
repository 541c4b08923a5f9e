"""Small graph algorithms on named variables and boolean adjacency matrices."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

ACTION = "a"  #: name of the exogenous action input in every graph


def reachability(adjacency: np.ndarray) -> np.ndarray:
    """Boolean transitive closure: ``out[i, j]`` iff a directed path ``i -> ... -> j`` exists."""
    adjacency = np.asarray(adjacency, dtype=bool)
    reach = adjacency.copy()
    for _ in range(len(adjacency)):
        grown = reach | ((reach.astype(int) @ adjacency.astype(int)) > 0)
        if np.array_equal(grown, reach):
            break
        reach = grown
    return reach


def topological_order(names: list[str], edges: Mapping[str, Mapping[str, float]]) -> tuple[str, ...]:
    """Kahn's algorithm taking the first ready variable in the given order; a cycle raises ValueError."""
    pending = {child: {p for p in parents if p != ACTION} for child, parents in edges.items()}
    order: list[str] = []
    while pending:
        ready = next((name for name in names if name in pending and not pending[name]), None)
        if ready is None:
            raise ValueError(
                f"graph must be acyclic; the variables {sorted(pending)} cannot be ordered (a cycle)"
            )
        del pending[ready]
        order.append(ready)
        for parents in pending.values():
            parents.discard(ready)
    return tuple(order)
