"""Action repeat: the agent decides every ``repeat`` environment steps."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.core import ActType, ObsType


class ActionRepeat(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """Applies each action for ``repeat`` consecutive steps of the wrapped env.

    The rewards of those steps are summed; the observation and ``info`` are the last step's. The
    repetition stops early when the episode ends, so an episode never runs past its termination
    or time limit. ``info["frames"]`` says how many steps of the wrapped env the call took, so
    budgets can be counted in environment frames. This is the frame skip of the pixel-based
    control literature (Hafner et al. 2019, PlaNet; 2020, Dreamer: ``repeat=2`` on the DeepMind
    Control Suite); Gymnasium's own ``MaxAndSkipObservation`` does the same for Atari, but takes
    the maximum of the last two frames, which blurs a moving pole into two.

    Put the wrapper *inside* ``AddRenderObservation`` so that only the frame the agent sees is
    drawn:

    >>> import gymnasium as gym
    >>> import gym_advrl
    >>> env = gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=64, height=64)
    >>> env = gym.wrappers.AddRenderObservation(ActionRepeat(env, 2), render_only=True)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (64, 64, 3)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> info["frames"]
    2

    Goal-conditioned envs (those with ``compute_reward``) are refused: a summed reward is not what
    their ``compute_reward`` gives, which hindsight relabelling relies on.

    :param env: the environment to wrap
    :param repeat: environment steps per action, an integer >= 1 (1 leaves the env unchanged)
    """

    def __init__(self, env: gym.Env[ObsType, ActType], repeat: int = 2) -> None:
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}")
        if hasattr(env.unwrapped, "compute_reward"):
            raise ValueError(
                "env must not be goal-conditioned (it has compute_reward, which a reward summed "
                "over repeated steps would contradict)"
            )
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = repeat

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        total, frames = 0.0, 0
        while True:
            obs, reward, terminated, truncated, info = self.env.step(action)
            total, frames = total + float(reward), frames + 1
            if terminated or truncated or frames == self.repeat:
                break
        info = {**info, "frames": frames}
        return obs, total, terminated, truncated, info
