"""Circuit drawings for ``QuantumGateEnv``: a text diagram (``"ansi"``) and an RGB frame.

A circuit is a list of operations ``(gate name, qubits, is_noise)``; qubit 0 is the top wire.
"""

from __future__ import annotations

import numpy as np

from gym_advrl.utils.canvas import Canvas

Op = tuple[str, tuple[int, ...], bool]

_TEXT_LABELS = {
    "h": "H", "x": "X", "y": "Y", "z": "Z", "s": "S", "sdg": "Sdg", "t": "T", "tdg": "Tdg",
    "sx": "SX", "rx": "Rx", "ry": "Ry", "rz": "Rz",
}  # fmt: skip
#: Text symbols of two-qubit gates on (first qubit, second qubit), as in Cirq's diagrams.
_TEXT_PAIRS = {"cx": ("@", "X"), "cz": ("@", "@"), "swap": ("x", "x")}
_CELL = 5

_GATE_COLORS = {
    "h": (66, 133, 244), "x": (244, 160, 0), "y": (171, 71, 188), "z": (0, 150, 136),
    "s": (15, 157, 88), "sdg": (102, 187, 106), "t": (94, 53, 177), "tdg": (149, 117, 205),
    "sx": (255, 112, 67), "rx": (251, 192, 45), "ry": (141, 110, 99), "rz": (84, 110, 122),
}  # fmt: skip
_NOISE = (230, 25, 75)
_INK = (40, 40, 40)
_WIRE = (150, 150, 150)


def circuit_text(ops: list[Op], n_qubits: int) -> str:
    """The circuit as text: one wire per qubit, one column per operation.

    One-qubit gates show their name (``H``, ``Rx``, ...), Pauli errors ``~X``/``~Y``/``~Z``;
    ``cx`` is ``@`` (control) joined by ``|`` to ``X`` (target), ``cz`` ``@``-``@``, ``swap`` ``x``-``x``.
    """
    wires = [[f"q[{q}]: -"] for q in range(n_qubits)]
    gaps = [[" " * len(f"q[{q}]: -")] for q in range(n_qubits - 1)]
    for name, qubits, noise in ops:
        wire_cells = ["-" * _CELL] * n_qubits
        gap_cells = [" " * _CELL] * (n_qubits - 1)
        if len(qubits) == 1:
            label = f"~{name.upper()}" if noise else _TEXT_LABELS[name]
            wire_cells[qubits[0]] = label.center(_CELL, "-")
        else:
            low, high = min(qubits), max(qubits)
            for qubit in range(low + 1, high):
                wire_cells[qubit] = "|".center(_CELL, "-")
            for gap in range(low, high):
                gap_cells[gap] = "|".center(_CELL)
            for qubit, symbol in zip(qubits, _TEXT_PAIRS[name], strict=True):
                wire_cells[qubit] = symbol.center(_CELL, "-")
        for qubit in range(n_qubits):
            wires[qubit].append(wire_cells[qubit])
        for gap in range(n_qubits - 1):
            gaps[gap].append(gap_cells[gap])
    lines = []
    for qubit in range(n_qubits):
        lines.append("".join(wires[qubit]) + "-")
        if qubit < n_qubits - 1:
            lines.append("".join(gaps[qubit]).rstrip())
    return "\n".join(lines) + "\n"


def _phase_colors(phases: np.ndarray) -> np.ndarray:
    """Map phases in [-pi, pi] to RGB on a colour wheel (HSV with s=0.75, v=0.9)."""
    hue = (phases + np.pi) / (2 * np.pi) * 6.0
    sector = np.floor(hue).astype(int) % 6
    frac = hue - np.floor(hue)
    value, sat = 0.9, 0.75
    p, q, t = value * (1 - sat), value * (1 - sat * frac), value * (1 - sat * (1 - frac))
    table = np.stack(
        [
            np.stack([np.full_like(frac, value), t, np.full_like(frac, p)], -1),
            np.stack([q, np.full_like(frac, value), np.full_like(frac, p)], -1),
            np.stack([np.full_like(frac, p), np.full_like(frac, value), t], -1),
            np.stack([np.full_like(frac, p), q, np.full_like(frac, value)], -1),
            np.stack([t, np.full_like(frac, p), np.full_like(frac, value)], -1),
            np.stack([np.full_like(frac, value), np.full_like(frac, p), q], -1),
        ]
    )
    return (table[sector, np.arange(len(frac))] * 255).astype(np.uint8)


def draw_frame(
    ops: list[Op], n_qubits: int, state: np.ndarray, target: np.ndarray, fidelity: float, threshold: float
) -> np.ndarray:
    """An RGB frame: the circuit, basis-state probabilities (up to 6 qubits) and a fidelity bar.

    Probability bars are coloured by the amplitude's phase; a black tick marks the target's
    probability of each basis state. The bottom bar fills with the fidelity (green once it
    reaches the black threshold tick).
    """
    width, wire_gap, top = 400, 28, 18
    circuit_h = top + wire_gap * n_qubits
    dim = state.shape[-1]
    bars_h = 110 if dim <= 64 else 0
    height = circuit_h + bars_h + 34
    canvas = Canvas(width, height, (0.0, width), (0.0, height))

    def y_of(row_from_top: float) -> float:
        return height - row_from_top

    left, right = 16.0, width - 10.0
    n_cols = max(20, len(ops))
    col_w = (right - left - 10.0) / n_cols
    box = min(col_w * 0.8, 18.0)
    wire_y = [y_of(top + wire_gap * q) for q in range(n_qubits)]
    for y in wire_y:
        canvas.draw_line(left, y, right, y, 2.0, _WIRE)
    for column, (name, qubits, noise) in enumerate(ops):
        x = left + 10.0 + col_w * (column + 0.5)
        if len(qubits) == 1:
            y = wire_y[qubits[0]]
            half = box / 2 if not noise else box / 3
            canvas.fill_rect(x - half, y - half, x + half, y + half, _NOISE if noise else _GATE_COLORS[name])
            continue
        y_a, y_b = wire_y[qubits[0]], wire_y[qubits[1]]
        canvas.draw_line(x, y_a, x, y_b, 2.0, _INK)
        radius = box / 2
        if name == "cx":
            canvas.fill_circle(x, y_a, radius / 2.5, _INK)
            canvas.fill_circle(x, y_b, radius, _INK)
            canvas.fill_circle(x, y_b, radius - 2.0, (255, 255, 255))
            canvas.draw_line(x - radius, y_b, x + radius, y_b, 2.0, _INK)
            canvas.draw_line(x, y_b - radius, x, y_b + radius, 2.0, _INK)
        elif name == "cz":
            canvas.fill_circle(x, y_a, radius / 2.5, _INK)
            canvas.fill_circle(x, y_b, radius / 2.5, _INK)
        else:  # swap: a cross on each wire
            for y in (y_a, y_b):
                canvas.draw_line(x - radius / 2, y - radius / 2, x + radius / 2, y + radius / 2, 2.0, _INK)
                canvas.draw_line(x - radius / 2, y + radius / 2, x + radius / 2, y - radius / 2, 2.0, _INK)

    if bars_h:
        base = y_of(circuit_h + bars_h - 6)
        bar_w = (right - left) / dim
        probs, target_probs = np.abs(state) ** 2, np.abs(target) ** 2
        colors = _phase_colors(np.angle(state))
        scale = bars_h - 16
        for index in range(dim):
            x0 = left + bar_w * index
            if probs[index] > 1e-6:
                canvas.fill_rect(
                    x0 + 1, base, x0 + bar_w - 1, base + scale * probs[index], tuple(colors[index])
                )
            level = base + scale * target_probs[index]
            canvas.draw_line(x0 + 2, level, x0 + bar_w - 2, level, 2.0, _INK)
        canvas.draw_line(left, base, right, base, 1.0, _INK)

    bar_top, bar_bottom = y_of(height - 28), y_of(height - 8)
    canvas.fill_rect(left, bar_bottom, right, bar_top, (225, 225, 225))
    fill = (60, 180, 75) if fidelity >= threshold else (66, 133, 244)
    canvas.fill_rect(left, bar_bottom, left + (right - left) * fidelity, bar_top, fill)
    tick = left + (right - left) * threshold
    canvas.draw_line(tick, bar_bottom - 3, tick, bar_top + 3, 2.0, _INK)
    return canvas.image
