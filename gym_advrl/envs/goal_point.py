"""A goal-conditioned 2-D point mass with the particle worlds' physics, for hindsight replay."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.utils.canvas import Canvas
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import (
    box_action,
    check_choice,
    check_float,
    check_options,
    reject_unknown_kwargs,
)

REWARD_TYPES = ("sparse", "dense")
#: Half-width of the square arena ``[-1, 1]^2``; positions are clipped to it.
ARENA = 1.0


class GoalPointMassEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    A point mass in the square ``[-1, 1]^2`` must reach a goal drawn anew every episode, with the
    particle worlds' physics (``gym_advrl.marl``: ``vel <- 0.9 (vel + 0.1 a)``, ``pos <- pos + 0.1
    vel``, no noise) and Gymnasium-Robotics' ``GoalEnv`` conventions, so that SB3's
    ``HerReplayBuffer`` with SAC, TD3 or DDPG relabels its transitions with reached positions.

    ## Action Space

    ``Box(-1, 1, (2,), float32)``: the acceleration (finite values outside the box are clipped).

    ## Observation Space

    ``Dict``: ``observation`` ``Box(-inf, inf, (4,), float32)`` (position, velocity),
    ``achieved_goal`` and ``desired_goal`` ``Box(-1, 1, (2,), float32)`` (position, goal).

    ## Rewards

    ``compute_reward(achieved_goal, desired_goal, info)``, vectorized: ``"sparse"`` (default)
    ``-1`` while the distance exceeds ``distance_threshold`` and ``0`` within it; ``"dense"``
    minus the distance. ``step`` returns ``compute_reward`` of its own goals.

    ## Starting State

    Position uniform in ``[-0.2, 0.2]^2``, velocity zero; the goal uniform in ``[-0.9, 0.9]^2``
    at least ``2 distance_threshold`` away, or ``reset(options={"goal": (x, y)})`` inside the arena.

    ## Episode End

    ``compute_terminated``: within ``distance_threshold`` of the goal. The registered id
    ``AdvRL/GoalPointMass-v0`` truncates after 50 steps.

    ## Arguments

    | Argument             | Default  | Meaning                                               |
    |----------------------|----------|-------------------------------------------------------|
    | `distance_threshold` | 0.1      | radius of success, in (0, 1]                          |
    | `reward_type`        | "sparse" | `"sparse"` (-1 / 0) or `"dense"` (minus the distance) |
    | `render_mode`        | None     | `"rgb_array"` (400x400) or `"human"`                  |

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}
    _snapshot_attrs = ("position", "velocity", "goal")

    @reject_unknown_kwargs
    def __init__(
        self, render_mode: str | None = None, distance_threshold: float = 0.1, reward_type: str = "sparse"
    ) -> None:
        self._init_render(render_mode)
        self.distance_threshold = check_float(
            "distance_threshold", distance_threshold, 0.0, 1.0, low_inclusive=False
        )
        self.reward_type = check_choice("reward_type", reward_type, REWARD_TYPES)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        goal = spaces.Box(-ARENA, ARENA, (2,), np.float32)
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-np.inf, np.inf, (4,), np.float32),
                "achieved_goal": goal,
                "desired_goal": goal,
            }
        )
        self.position: np.ndarray | None = None
        self.velocity = np.zeros(2)
        self.goal = np.zeros(2)

    # ------------------------------------------------------------------ GoalEnv API
    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray | float:
        """``-1`` farther than ``distance_threshold`` and ``0`` within it (``"sparse"``), or minus
        the distance (``"dense"``), for goals ``(..., 2)``; a float for a single pair."""
        distance = np.linalg.norm(
            np.asarray(achieved_goal, np.float64) - np.asarray(desired_goal, np.float64), axis=-1
        )
        reward = (
            np.where(distance > self.distance_threshold, -1.0, 0.0)
            if self.reward_type == "sparse"
            else -distance
        )
        return float(reward) if np.ndim(reward) == 0 else reward.astype(np.float32)

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray | bool:
        distance = np.linalg.norm(
            np.asarray(achieved_goal, np.float64) - np.asarray(desired_goal, np.float64), axis=-1
        )
        done = distance <= self.distance_threshold
        return bool(done) if np.ndim(done) == 0 else done

    def compute_truncated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray | bool:
        shape = np.shape(np.asarray(achieved_goal))[:-1]
        return False if shape == () else np.zeros(shape, dtype=bool)

    # ------------------------------------------------------------------ dynamics
    def _obs(self) -> dict[str, np.ndarray]:
        position = self.position.astype(np.float32)
        return {
            "observation": np.concatenate([position, self.velocity.astype(np.float32)]),
            "achieved_goal": position.copy(),
            "desired_goal": self.goal.astype(np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        options = check_options(options, ("goal",))
        self.position = self.np_random.uniform(-0.2, 0.2, size=2)
        self.velocity = np.zeros(2)
        if "goal" in options:
            try:
                goal = np.asarray(options["goal"], dtype=np.float64)
            except (TypeError, ValueError):
                goal = np.full(3, np.nan)  # reported below
            if goal.shape != (2,) or not np.all(np.isfinite(goal)) or np.any(np.abs(goal) > ARENA):
                raise ValueError(f"goal must be a point (x, y) in [-1, 1]^2, got {options['goal']!r}")
            self.goal = goal
        else:
            while True:  # at least 2 thresholds away: no episode starts solved
                self.goal = self.np_random.uniform(-0.9, 0.9, size=2)
                if np.linalg.norm(self.goal - self.position) > 2 * self.distance_threshold:
                    break
        self._render_human_step()
        return self._obs(), {"goal": tuple(float(v) for v in self.goal)}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        if self.position is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        a = box_action(action, self.action_space)
        self.velocity = 0.9 * (self.velocity + 0.1 * a)
        self.position = np.clip(self.position + 0.1 * self.velocity, -ARENA, ARENA)
        obs = self._obs()
        info = {"goal": tuple(float(v) for v in self.goal)}
        reward = self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
        terminated = self.compute_terminated(obs["achieved_goal"], obs["desired_goal"], info)
        self._render_human_step()
        return obs, reward, terminated, False, info

    # ------------------------------------------------------------------ rendering
    def _render_ready(self) -> bool:
        return self.position is not None

    def _draw(self) -> np.ndarray:
        """The arena, the goal's success disc and the point mass."""
        canvas = Canvas(400, 400, (-1.05, 1.05), (-1.05, 1.05), background=(245, 245, 245))
        canvas.fill_rect(-1.0, -1.0, 1.0, 1.0, (255, 255, 255))
        canvas.fill_circle(self.goal[0], self.goal[1], self.distance_threshold, (120, 200, 120))
        canvas.fill_circle(self.position[0], self.position[1], 0.04, (200, 50, 50))
        return canvas.image
