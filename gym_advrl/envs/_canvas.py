"""A tiny numpy rasterizer for ``render_mode="rgb_array"``.

Rendering to an array must work without pygame (an optional extra), so the envs draw their
frames with these few vectorized primitives: filled rectangles, discs and thick line segments,
in world coordinates mapped onto a pixel grid.
"""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]


class Canvas:
    """An RGB image with a world-to-pixel transform (y axis pointing up)."""

    def __init__(
        self,
        width: int,
        height: int,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        background: Color = (255, 255, 255),
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.image = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self.image[:] = background
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.scale_x = self.width / (self.x1 - self.x0)
        self.scale_y = self.height / (self.y1 - self.y0)
        # Pixel-centre coordinates in world units, computed once per canvas.
        cols = (np.arange(self.width) + 0.5) / self.scale_x + self.x0
        rows = self.y1 - (np.arange(self.height) + 0.5) / self.scale_y
        self._xs = cols[None, :]
        self._ys = rows[:, None]

    def fill_rect(self, x_min: float, y_min: float, x_max: float, y_max: float, color: Color) -> None:
        mask = (self._xs >= x_min) & (self._xs <= x_max) & (self._ys >= y_min) & (self._ys <= y_max)
        self.image[mask] = color

    def fill_circle(self, cx: float, cy: float, radius: float, color: Color) -> None:
        mask = (self._xs - cx) ** 2 + (self._ys - cy) ** 2 <= radius**2
        self.image[mask] = color

    def draw_line(self, x_a: float, y_a: float, x_b: float, y_b: float, width: float, color: Color) -> None:
        """A segment of the given world-unit width with round caps (a capsule)."""
        dx, dy = x_b - x_a, y_b - y_a
        length_sq = dx * dx + dy * dy
        px, py = self._xs - x_a, self._ys - y_a
        if length_sq == 0.0:
            t = np.zeros(np.broadcast_shapes(px.shape, py.shape))
        else:
            t = np.clip((px * dx + py * dy) / length_sq, 0.0, 1.0)
        dist_sq = (px - t * dx) ** 2 + (py - t * dy) ** 2
        self.image[dist_sq <= (width / 2.0) ** 2] = color


def grid_image(colors: np.ndarray, cell_px: int) -> np.ndarray:
    """Upscale an ``(rows, cols, 3)`` uint8 colour grid to ``cell_px`` pixels per cell."""
    return np.repeat(np.repeat(colors, cell_px, axis=0), cell_px, axis=1)
