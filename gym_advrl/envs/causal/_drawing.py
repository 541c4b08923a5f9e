"""Drawing helpers for the causal env's ``rgb_array`` frames: graph layout, arrows, value colours."""

from __future__ import annotations

import numpy as np

from gym_advrl.envs.causal.scm import ACTION, LinearGaussianSCM
from gym_advrl.utils.canvas import Canvas


def layered_layout(
    scm: LinearGaussianSCM, show_action: bool
) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Column = longest-path depth (the action and roots at 0); rows spread within a column."""
    depth: dict[str, int] = {ACTION: 0}
    for j, name in enumerate(scm.variables):
        parents = [depth[scm.variables[i]] + 1 for i in np.flatnonzero(scm.weights[:, j])]
        if scm.action_weights[j]:
            parents.append(1)
        depth[name] = max(parents, default=0)
    columns: dict[int, list[str]] = {}
    for name in ((ACTION,) if show_action else ()) + scm.variables:
        columns.setdefault(depth[name], []).append(name)
    height = max(len(names) for names in columns.values()) - 1
    y_max = float(max(height, 1))
    positions: dict[str, tuple[float, float]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            if len(names) > 1:
                positions[name] = (float(col), height - row * height / (len(names) - 1))
            else:  # stagger lone nodes so that edges skipping a column do not cross them
                positions[name] = (float(col), height / 2 + 0.3 * y_max * (1 if col % 2 else -1))
    x_max = float(max(columns))
    if scm.confounded:
        hit = [positions[v][0] for v, w in zip(scm.variables, scm.confounder_weights, strict=True) if w]
        positions["U"] = (float(np.mean(hit)), y_max + 0.6)
    return positions, (x_max, y_max)


def value_color(value: float | None) -> tuple[int, int, int]:
    """Grey when unknown; white at 0, saturating to red (+2) or blue (-2)."""
    if value is None:
        return (190, 190, 190)
    t = float(np.clip(abs(value) / 2.0, 0.0, 1.0))
    fade = int(255 * (1.0 - t))
    return (255, fade, fade) if value > 0 else (fade, fade, 255)


def arrow(
    canvas: Canvas, start: tuple[float, float], end: tuple[float, float], color: tuple[int, int, int]
) -> None:
    (x0, y0), (x1, y1) = start, end
    length = float(np.hypot(x1 - x0, y1 - y0))
    if length == 0.0:
        return
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    tip_x, tip_y = x1 - 0.28 * ux, y1 - 0.28 * uy
    canvas.draw_line(x0 + 0.25 * ux, y0 + 0.25 * uy, tip_x, tip_y, 0.04, color)
    for side in (1.0, -1.0):
        wing_x = tip_x - 0.14 * ux + side * 0.08 * -uy
        wing_y = tip_y - 0.14 * uy + side * 0.08 * ux
        canvas.draw_line(tip_x, tip_y, wing_x, wing_y, 0.04, color)
