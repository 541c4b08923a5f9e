"""A tiny numpy rasterizer for ``render_mode="rgb_array"``.

Rendering to an array must work without pygame (an optional extra), so the envs draw their
frames with these few vectorized primitives: filled rectangles, discs and thick line segments,
in world coordinates mapped onto a pixel grid. Each primitive only touches the pixels of its
bounding box, so a frame costs in proportion to what is drawn, not to the number of shapes
times the image size (a 50-variable causal graph draws hundreds of arrows).
"""

from __future__ import annotations

import math

import numpy as np

Color = tuple[int, int, int]

#: Diagonal segments are drawn in pieces of about this many pixels, so that a long thin line
#: does not scan its whole bounding box. The union of the pieces' capsules is the segment's.
_PIECE_PX = 32.0


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
        self.background = background
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.scale_x = self.width / (self.x1 - self.x0)
        self.scale_y = self.height / (self.y1 - self.y0)
        # Pixel-centre coordinates in world units, computed once per canvas.
        cols = (np.arange(self.width) + 0.5) / self.scale_x + self.x0
        rows = self.y1 - (np.arange(self.height) + 0.5) / self.scale_y
        self._xs = cols[None, :]
        self._ys = rows[:, None]

    @property
    def pixel_width(self) -> float:
        """Width of one pixel in world units."""
        return 1.0 / self.scale_x

    @property
    def pixel_height(self) -> float:
        """Height of one pixel in world units."""
        return 1.0 / self.scale_y

    @property
    def pixel(self) -> float:
        """The larger side of one pixel in world units."""
        return max(self.pixel_width, self.pixel_height)

    def thin(self, size: float, min_size: float, color: Color, power: int = 1) -> tuple[float, Color]:
        """``(size, color)`` to draw a part of thickness (or radius) ``size`` on this canvas.

        A part at least ``min_size`` thick (about a pixel) is drawn as it is. A thinner one would
        hit no pixel centre and vanish from a small frame: it is drawn ``min_size`` thick in its
        colour mixed with the background by the share of ink it really has, ``(size / min_size) **
        power`` (``power=2`` for a disc's radius), which is about what an area-averaging downscale
        of a large frame shows there.
        """
        if size >= min_size:
            return size, color
        share = (max(size, 0.0) / min_size) ** power
        mixed = tuple(round(b + share * (c - b)) for c, b in zip(color, self.background, strict=True))
        return min_size, mixed  # type: ignore[return-value]

    def _window(self, x_min: float, x_max: float, y_min: float, y_max: float) -> tuple[slice, slice] | None:
        """Row and column slices covering every pixel whose centre may lie in the world box."""
        cols = _pixel_range((x_min - self.x0) * self.scale_x, (x_max - self.x0) * self.scale_x, self.width)
        rows = _pixel_range((self.y1 - y_max) * self.scale_y, (self.y1 - y_min) * self.scale_y, self.height)
        if cols is None or rows is None:
            return None
        return slice(rows[0], rows[1] + 1), slice(cols[0], cols[1] + 1)

    def fill_rect(self, x_min: float, y_min: float, x_max: float, y_max: float, color: Color) -> None:
        window = self._window(x_min, x_max, y_min, y_max)
        if window is None:
            return
        rows, cols = window
        xs, ys = self._xs[:, cols], self._ys[rows]
        mask = (xs >= x_min) & (xs <= x_max) & (ys >= y_min) & (ys <= y_max)
        self.image[rows, cols][mask] = color

    def fill_circle(self, cx: float, cy: float, radius: float, color: Color) -> None:
        window = self._window(cx - abs(radius), cx + abs(radius), cy - abs(radius), cy + abs(radius))
        if window is None:
            return
        rows, cols = window
        mask = (self._xs[:, cols] - cx) ** 2 + (self._ys[rows] - cy) ** 2 <= radius**2
        self.image[rows, cols][mask] = color

    def draw_line(self, x_a: float, y_a: float, x_b: float, y_b: float, width: float, color: Color) -> None:
        """A segment of the given world-unit width with round caps (a capsule)."""
        diagonal_px = min(abs(x_b - x_a) * self.scale_x, abs(y_b - y_a) * self.scale_y)
        pieces = max(1, math.ceil(diagonal_px / _PIECE_PX)) if math.isfinite(diagonal_px) else 1
        for k in range(pieces):
            t0, t1 = k / pieces, (k + 1) / pieces
            self._capsule(
                x_a + t0 * (x_b - x_a), y_a + t0 * (y_b - y_a), x_a + t1 * (x_b - x_a), y_a + t1 * (y_b - y_a),
                width, color,
            )  # fmt: skip

    def _capsule(self, x_a: float, y_a: float, x_b: float, y_b: float, width: float, color: Color) -> None:
        half = abs(width) / 2.0
        window = self._window(
            min(x_a, x_b) - half, max(x_a, x_b) + half, min(y_a, y_b) - half, max(y_a, y_b) + half
        )
        if window is None:
            return
        rows, cols = window
        dx, dy = x_b - x_a, y_b - y_a
        length_sq = dx * dx + dy * dy
        px, py = self._xs[:, cols] - x_a, self._ys[rows] - y_a
        if length_sq == 0.0:
            t = np.zeros(np.broadcast_shapes(px.shape, py.shape))
        else:
            t = np.clip((px * dx + py * dy) / length_sq, 0.0, 1.0)
        dist_sq = (px - t * dx) ** 2 + (py - t * dy) ** 2
        self.image[rows, cols][dist_sq <= (width / 2.0) ** 2] = color


def _pixel_range(low: float, high: float, size: int) -> tuple[int, int] | None:
    """First and last index of the pixels (centres at ``i + 0.5``) that may lie in ``[low, high]``.

    In pixel units, with one pixel of slack on each side so that the exact tests of the
    primitives, evaluated on the window, decide every border pixel as on the whole image.
    """
    if not low <= high:  # empty, or NaN
        return None
    first = max(0, math.floor(max(low, -2.0) - 0.5) - 1)
    last = min(size - 1, math.floor(min(high, size + 2.0) - 0.5) + 1)
    return (first, last) if first <= last else None


def grid_image(colors: np.ndarray, cell_px: int) -> np.ndarray:
    """Upscale an ``(rows, cols, 3)`` uint8 colour grid to ``cell_px`` pixels per cell."""
    return np.repeat(np.repeat(colors, cell_px, axis=0), cell_px, axis=1)
