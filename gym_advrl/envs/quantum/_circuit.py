"""The episode's gate labels as a constant-time, immutable view (``info["gates"]`` of QuantumGate-v0)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload


class GateLabels(Sequence[str]):
    """``info["gates"]``: the labels of the gates applied so far, as an immutable sequence.

    A view of the first ``length`` entries of the episode's append-only list of action indices,
    so building it costs O(1) per step (a tuple copy would cost O(t) and make long episodes
    quadratic). It compares equal to the tuple of the same labels and pickles or copies as that
    tuple.
    """

    __slots__ = ("_codes", "_labels", "_length")

    def __init__(self, codes: list[int], length: int, labels: tuple[str, ...]) -> None:
        self._codes, self._length, self._labels = codes, length, labels

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        positions = range(self._length)[index]
        if isinstance(positions, range):
            return tuple(self._labels[self._codes[i]] for i in positions)
        return self._labels[self._codes[positions]]

    def __iter__(self) -> Iterator[str]:
        labels = self._labels
        return (labels[code] for code in self._codes[: self._length])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == self._length and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))
