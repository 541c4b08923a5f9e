"""Small synthetic envs for the latent-model tests, registered under ``Test/`` ids on import.

* ``Test/PointImage-v0``: a point on a line drawn as a 16x16 RGB image (``uint8``), moved by a
  ``Box(-1, 1, (1,))`` action; reward ``-|x|``; 30 steps. Image observations with continuous
  actions at a size that keeps the CNN tests fast.
* ``Test/ActionReward-v0``: the reward is the action (``Box``: ``a``; ``Discrete(2)``: 1 for
  action 1, else 0) and the observation a constant-plus-noise vector; 10 steps. A policy that
  learns anything earns the maximum return 10, a uniform one 0 (Box) or 5 (Discrete).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class PointImageEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, size: int = 16, render_mode: str | None = None) -> None:
        self.size, self.render_mode = size, render_mode
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = spaces.Box(-1, 1, (1,), np.float32)
        self.x = 0.0

    def _image(self) -> np.ndarray:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        col = int(round((self.x + 1) / 2 * (self.size - 1)))
        image[self.size // 2 - 2 : self.size // 2 + 2, max(col - 1, 0) : col + 2] = (255, 128, 0)
        return image

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        return self._image(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.2 * float(np.clip(action, -1, 1)[0]), -1, 1))
        return self._image(), -abs(self.x), False, False, {}

    def render(self) -> np.ndarray:
        return self._image()


class ActionRewardEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, discrete: bool = False) -> None:
        self.discrete = discrete
        self.observation_space = spaces.Box(-5, 5, (2,), np.float32)
        self.action_space = spaces.Discrete(2) if discrete else spaces.Box(-1, 1, (1,), np.float32)

    def _obs(self) -> np.ndarray:
        return (np.ones(2) + 0.1 * self.np_random.standard_normal(2)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        reward = float(action == 1) if self.discrete else float(np.clip(action, -1, 1)[0])
        return self._obs(), reward, False, False, {}


def register() -> None:
    if "Test/PointImage-v0" not in gym.registry:
        gym.register("Test/PointImage-v0", entry_point=PointImageEnv, max_episode_steps=30)
        gym.register("Test/ActionReward-v0", entry_point=ActionRewardEnv, max_episode_steps=10)


register()
