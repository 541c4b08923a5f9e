"""Where each environment's hierarchy of :class:`~sb3_ext.hac.HAC` stands: the subgoals in force,
how many actions each level has taken toward its goal, which subgoals are under test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class HierarchyState:
    """The running subgoals of ``n`` environments' hierarchies of ``n_levels`` levels.

    Level ``i < n_levels - 1`` pursues ``subgoals[:, i]`` (proposed by level ``i + 1``) while
    ``active[:, i]``; the top level pursues the env's ``desired_goal``.
    """

    subgoals: np.ndarray  #: ``(n, n_levels - 1, goal_dim)`` float32
    active: np.ndarray  #: ``(n, n_levels - 1)`` bool: the subgoal is in force
    steps: np.ndarray  #: ``(n, n_levels)`` int64: actions level ``i`` has taken toward its goal
    testing: np.ndarray  #: ``(n, n_levels - 1)`` bool: the subgoal is under test (levels below act greedily)

    @classmethod
    def fresh(cls, n: int, n_levels: int, goal_dim: int) -> HierarchyState:
        """No subgoal in force anywhere: every level proposes at the next step."""
        return cls(
            subgoals=np.zeros((n, n_levels - 1, goal_dim), np.float32),
            active=np.zeros((n, n_levels - 1), bool),
            steps=np.zeros((n, n_levels), np.int64),
            testing=np.zeros((n, n_levels - 1), bool),
        )

    def reset(self, rows: np.ndarray) -> None:
        """Start afresh in the environments ``rows`` (a bool mask), e.g. at a new episode."""
        self.subgoals[rows] = 0.0
        self.active[rows] = False
        self.steps[rows] = 0
        self.testing[rows] = False

    def as_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``state`` :meth:`HAC.predict <sb3_ext.hac.HAC.predict>` returns: copies of the
        subgoals, the active flags and the step counts."""
        return self.subgoals.copy(), self.active.copy(), self.steps.copy()

    @classmethod
    def from_state(
        cls, state: tuple[np.ndarray, ...], n: int, n_levels: int, goal_dim: int
    ) -> HierarchyState:
        """The hierarchy of a ``state`` returned by :meth:`as_state` (copied); ``ValueError`` if it
        does not fit ``n`` environments."""
        if not isinstance(state, tuple | list) or len(state) != 3:
            raise ValueError("state must be the (subgoals, active, steps) tuple that HAC.predict returned")
        subgoals, active, steps = (np.array(part, copy=True) for part in state)
        expected = ((n, n_levels - 1, goal_dim), (n, n_levels - 1), (n, n_levels))
        if (subgoals.shape, active.shape, steps.shape) != expected:
            raise ValueError(
                f"state must hold arrays of shapes {expected} for {n} observation(s), got "
                f"{(subgoals.shape, active.shape, steps.shape)}"
            )
        return cls(
            subgoals.astype(np.float32),
            active.astype(bool),
            steps.astype(np.int64),
            np.zeros((n, n_levels - 1), bool),
        )
