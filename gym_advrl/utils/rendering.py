"""Rendering shared by every gym_advrl environment, single-agent and multi-agent.

An env draws one frame in ``_draw() -> (H, W, 3) uint8`` with numpy (so ``"rgb_array"`` needs no
optional package) and, where text is natural, ``_ansi() -> str``. ``"human"`` shows the frames in
a pygame window; pygame is the optional ``[render]`` extra and is imported only then.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gym_advrl.utils.validation import check_choice, check_int

#: Largest ``width`` or ``height`` of a rendered frame, in pixels (a frame stays below 50 MB).
MAX_FRAME_SIDE = 4096


def check_frame_size(width: Any, height: Any) -> tuple[int, int]:
    """``(width, height)`` of the rendered frames as integers in ``[1, MAX_FRAME_SIDE]``, else ``ValueError``.

    Named as in Gymnasium's MuJoCo environments (``gym.make(..., width=64, height=64)``).
    """
    return check_int("width", width, 1, MAX_FRAME_SIDE), check_int("height", height, 1, MAX_FRAME_SIDE)


class RenderMixin:
    """Implements ``render``/``close`` for ``gym.Env`` subclasses from ``_draw`` (and ``_ansi``)."""

    metadata: dict[str, Any]
    render_mode: str | None
    _window: Any = None
    _clock: Any = None

    def _init_render(self, render_mode: str | None) -> None:
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self._window = None
        self._clock = None

    def _draw(self) -> np.ndarray:
        raise NotImplementedError

    def _ansi(self) -> str:
        raise NotImplementedError

    def _render_ready(self) -> bool:
        """Whether there is a state to draw (false before the first ``reset``)."""
        return True

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("You are calling render method without specifying any render mode.")
            return None
        if not self._render_ready():
            raise gym.error.ResetNeeded("Cannot call render() before reset()")
        if self.render_mode == "ansi":
            return self._ansi()
        frame = self._draw()
        if self.render_mode == "rgb_array":
            return frame
        self._window, self._clock = _show_frame(frame, self._window, self._clock, self.metadata["render_fps"])
        return None

    def _render_human_step(self) -> None:
        """Called at the end of ``step``/``reset``: refresh the window in ``"human"`` mode."""
        if self.render_mode == "human":
            self.render()

    def __getstate__(self) -> dict[str, Any]:
        # An open pygame window cannot be pickled or copied: a copy opens its own when it renders.
        state = self.__dict__.copy()
        state["_window"] = state["_clock"] = None
        return state

    def close(self) -> None:
        if self._window is not None:
            pygame = _pygame()
            pygame.display.quit()
            pygame.quit()
            self._window = None


def _pygame() -> Any:
    try:
        import pygame
    except ImportError as err:
        raise gym.error.DependencyNotInstalled(
            'render_mode="human" needs pygame: pip install "gym-advrl[render]"'
        ) from err
    return pygame


def _show_frame(frame: np.ndarray, window: Any, clock: Any, fps: int) -> tuple[Any, Any]:
    pygame = _pygame()
    height, width = frame.shape[:2]
    if window is None:
        pygame.init()
        pygame.display.init()
        window = pygame.display.set_mode((width, height))
        clock = pygame.time.Clock()
    window.blit(pygame.surfarray.make_surface(np.transpose(frame, (1, 0, 2))), (0, 0))
    pygame.event.pump()
    pygame.display.flip()
    clock.tick(fps)
    return window, clock
