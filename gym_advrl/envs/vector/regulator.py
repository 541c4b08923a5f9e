"""Natively vectorized NonlinearRegulator: all instances' noisy dynamics in one array pass."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from gym_advrl.envs.regulator import PROCESS_NOISE_RANGE, TRAIL_LENGTH, NonlinearRegulatorEnv
from gym_advrl.envs.vector._base import (
    AdvRLVectorEnv,
    RecentValues,
    check_num_envs,
    per_instance,
    vector_metadata,
)
from gym_advrl.envs.vector._streams import BlockStream


def _step_noise(rng: np.random.Generator, steps: int) -> np.ndarray:
    # The single env draws normal(size=5) per step: 4 process-noise terms, then s3's own.
    return rng.normal(size=(steps, 5))


class NonlinearRegulatorVectorEnv(AdvRLVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.regulator.NonlinearRegulatorEnv` stepped as arrays.

    Instance ``i`` reproduces ``gym.make("AdvRL/NonlinearRegulator-v0")`` reset with the same
    seed and given the same actions, noise included: each instance draws its noise from its own
    generator, many steps ahead in one call (see :mod:`gym_advrl.envs.vector._streams`).
    ``process_noise`` takes a number or a sequence of ``num_envs`` numbers in ``[0, 10]``.

    :param process_noise: standard deviation of the additive noise, shared or per instance
    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s.
    """

    metadata = vector_metadata(["rgb_array"], 20)
    single_env_class = NonlinearRegulatorEnv
    # Every row steps, finished ones too: their noise is given back (untake) before their reset.
    STATE_LIMIT = NonlinearRegulatorEnv.STATE_LIMIT

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 200,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        process_noise: Any = 0.02,
        render_envs: int | None = None,
    ) -> None:
        n = check_num_envs(num_envs)
        self.process_noise = per_instance("process_noise", process_noise, n, PROCESS_NOISE_RANGE)
        super().__init__(
            n,
            spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32),
            spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
            max_episode_steps,
            render_mode,
            autoreset_mode,
            render_envs,
        )
        self._noise = self._add_stream(BlockStream(self._rngs, _step_noise, (5,), block=64))
        self.state = np.zeros((4, n))  # one contiguous row per state component
        # The trail of (s0, s1) that the single env draws, for the instances render() draws.
        self._trails = None if render_mode is None else RecentValues(self.render_envs, TRAIL_LENGTH, (2,))

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        rngs = self._rngs
        for i in rows.tolist():
            self.state[:, i] = rngs[i].uniform(-1.0, 1.0, size=4)
        if self._trails is not None:
            self._trails.start(rows, self.state[:2, rows].T)
        return {}

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        s0, s1, s2, s3 = self.state if rows is None else self.state[:, rows]
        noise = self._noise.take(rows).T
        sigma = self.process_noise if rows is None else self.process_noise[rows]
        a0, a1 = actions[:, 0], actions[:, 1]
        # The single env's expressions in its order (bit-identical).
        next_state = np.empty((4, len(s0)))
        np.add(s0 + 0.1 * a0, 0.05 * np.sin(s1), out=next_state[0])
        np.add(s1 + 0.1 * a1, 0.02 * s0 * s2, out=next_state[1])
        np.add(0.9 * s2, 0.1 * np.tanh(a0 + a1), out=next_state[2])
        np.add(0.95 * s3, 0.01 * noise[4], out=next_state[3])
        next_state += sigma * noise[:4]
        if rows is None:
            self.state = next_state
        else:
            self.state[:, rows] = next_state
        if self._trails is not None:
            self._trails.append(self.state[:2].T, rows)
        sq = next_state**2
        total = sq[0] + sq[1] + sq[2] + sq[3]
        reward = -total - 0.01 * (a0**2 + a1**2)
        terminated = np.sqrt(total) > self.STATE_LIMIT
        return reward, terminated, {}

    def _discard_rows(self, rows: np.ndarray) -> None:
        self._noise.untake(rows)

    def _observations(self) -> np.ndarray:
        return self.state.T.astype(np.float32)

    # ------------------------------------------------------------------ planning interface
    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Batched reward (see :meth:`NonlinearRegulatorEnv.reward_fn`)."""
        return NonlinearRegulatorEnv.reward_fn(self, obs, action, next_obs)  # type: ignore[arg-type]

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        """Batched termination ``||next_obs|| > 3`` (see :meth:`NonlinearRegulatorEnv.termination_fn`)."""
        return NonlinearRegulatorEnv.termination_fn(self, next_obs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ rendering
    def _make_painter(self) -> gym.Env:
        return NonlinearRegulatorEnv(render_mode=self.render_mode)

    def _painter_state(self, painter: gym.Env, i: int) -> None:
        painter.state = self.state[:, i].copy()
        painter._trail = deque(self._trails.get(i), maxlen=TRAIL_LENGTH)
