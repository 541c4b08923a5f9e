"""Exact snapshots of a running environment, for planners and tree search.

``state = env.unwrapped.get_state()`` captures everything that changes while an episode runs
(the simulator state, per-episode settings such as physics or goals, and the env's random
generator ``np_random``); ``other.unwrapped.set_state(state)`` puts an env built with the same
arguments into exactly that situation, so that both continue identically under the same
actions: same observations, rewards, flags, noise draws and later resets. Snapshots are deep
copies: restoring one never aliases it, so a planner can restore the same snapshot many times
(MCTS, rollouts from real states). ``copy.deepcopy(env)`` is exact as well, wrappers included
(a ``gym.make`` env's ``TimeLimit`` counter, a wrapper's own generator); snapshots are the
cheaper way when only the base env must be cloned.
"""

from __future__ import annotations

import copy
from typing import Any


class SnapshotMixin:
    """Implements ``get_state``/``set_state`` from ``_snapshot_attrs``, the env's mutable attributes."""

    #: Names of the attributes that change during an episode (``np_random`` is always included).
    _snapshot_attrs: tuple[str, ...] = ()

    def get_state(self) -> dict[str, Any]:
        """A deep copy of the running state, random generator included."""
        state = {name: copy.deepcopy(getattr(self, name)) for name in self._snapshot_attrs}
        state["np_random"] = copy.deepcopy(getattr(self, "_np_random", None))
        state["np_random_seed"] = getattr(self, "_np_random_seed", None)
        return {"env": type(self).__name__, "state": state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by :meth:`get_state` on an env of the same class and arguments."""
        expected = set(self._snapshot_attrs) | {"np_random", "np_random_seed"}
        if (
            not isinstance(state, dict)
            or state.get("env") != type(self).__name__
            or not isinstance(state.get("state"), dict)
            or set(state["state"]) != expected
        ):
            source = state.get("env") if isinstance(state, dict) else None
            got = (
                f", got one of a {source}"
                if isinstance(source, str) and source != type(self).__name__
                else ""
            )
            raise ValueError(
                f"state must be a snapshot returned by get_state() of a {type(self).__name__}{got}"
            )
        values = copy.deepcopy(state["state"])
        for name in self._snapshot_attrs:
            setattr(self, name, values[name])
        self._np_random = values["np_random"]
        self._np_random_seed = values["np_random_seed"]
