"""Per-instance random streams drawn in blocks, so that each instance reproduces its single env.

Instance ``i`` of a vector env owns the generator that the single env would own after
``reset(seed=s_i)``; every number the single env draws, the vector env draws from that
generator, in the same order. Drawing it with one generator call per instance and step would
cost a Python call per instance, so the numbers of many steps are drawn ahead in one call per
instance (a *block*) and consumed one step at a time with array indexing. When an instance
resets, its generator is brought back to the exact position the single env's would have
(``sync``): restored to the state before the block and advanced by the numbers actually used.

Two kinds of stream cover every env of the package:

* :class:`BlockStream`: the same draws every step (``normal(size=5)`` for the regulator's
  noise). NumPy's ``Generator`` fills ``normal(size=(k, 5))`` with the same numbers as ``k``
  calls of ``normal(size=5)``, which is what makes the block exact.
* :class:`RawStream`: draws that depend on earlier draws (``random() < slip`` and, only then,
  ``integers(3)``). The block holds the raw 64-bit output of the bit generator and the stream
  recomputes ``random()`` and small ``integers(n)`` from it exactly as NumPy does (53-bit
  doubles; Lemire's bounded integers on 32-bit halves, with PCG64's cached upper half).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Steps (or raw 64-bit words) drawn ahead per instance: one generator call per instance every
#: ``BLOCK`` steps, a ``(num_envs, BLOCK, ...)`` buffer. Large blocks amortize the per-call
#: cost (a few microseconds) over many steps; a ``sync`` redraws only what was used.
BLOCK = 256
_DOUBLE_SCALE = 1.0 / 9007199254740992.0  # 2 ** -53, NumPy's next_double
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT11 = np.uint64(11)


class _Stream:
    """Bookkeeping shared by both streams: blocks, positions, and the state before each block."""

    def __init__(self, rngs: Sequence[np.random.Generator | None], block: int, keep_states: bool) -> None:
        self._rngs = rngs
        self.block = block
        self.keep_states = keep_states
        num_envs = len(rngs)
        self._pos = np.full(num_envs, block, dtype=np.int64)  # == block: nothing drawn ahead
        self._fresh = np.ones(num_envs, dtype=bool)  # no block drawn since seeding, sync or forget
        self._saved: list[dict[str, Any] | None] = [None] * num_envs

    def _refill(self, rows: np.ndarray) -> None:
        for i in rows.tolist():
            rng = self._rngs[i]
            self._saved[i] = self._start_block(i, rng, bool(self._fresh[i]))
            self._fill(i, rng)
        self._pos[rows] = 0
        self._fresh[rows] = False

    def _start_block(self, i: int, rng: np.random.Generator, fresh: bool) -> dict[str, Any] | None:
        """The generator's state before a new block, kept only if ``sync`` may need it."""
        return rng.bit_generator.state if self.keep_states else None

    def _ensure(self, rows: np.ndarray | None) -> None:
        pos = self._pos if rows is None else self._pos[rows]
        empty = pos >= self.block
        if empty.any():
            empty_rows = np.flatnonzero(empty)
            self._refill(empty_rows if rows is None else rows[empty_rows])

    def sync(self, rows: np.ndarray) -> None:
        """Put the generators of ``rows`` where the single envs' would be; forget their blocks."""
        if not self.keep_states:
            raise RuntimeError("sync needs a stream made with keep_states=True")
        for i in rows.tolist():
            saved = self._saved[i]
            if saved is None:
                continue
            rng = self._rngs[i]
            rng.bit_generator.state = saved
            self._advance(i, rng, int(self._pos[i]))
            self._saved[i] = None
        self._pos[rows] = self.block
        self._fresh[rows] = True

    def forget(self, rows: np.ndarray) -> None:
        """Drop the blocks of ``rows`` without syncing (their generators are being replaced)."""
        for i in rows.tolist():
            self._saved[i] = None
        self._pos[rows] = self.block
        self._fresh[rows] = True

    def _fill(self, i: int, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _advance(self, i: int, rng: np.random.Generator, used: int) -> None:
        raise NotImplementedError


class BlockStream(_Stream):
    """The same draws every step, ``draw(rng, k)`` giving ``k`` steps' worth stacked on axis 0.

    :param rngs: the vector env's per-instance generators (the list itself, read at each refill)
    :param draw: ``draw(rng, k) -> array (k, *shape)``; must equal ``k`` calls of ``draw(rng, 1)``
    :param shape: shape of one step's draw
    :param dtype: dtype of the draws
    :param block: steps drawn ahead
    :param keep_states: keep each generator's state before its block, for :meth:`sync` (needed
        when the env also draws from the generators directly, e.g. at reset)
    """

    def __init__(
        self,
        rngs: Sequence[np.random.Generator | None],
        draw: Callable[[np.random.Generator, int], np.ndarray],
        shape: tuple[int, ...],
        dtype: Any = np.float64,
        block: int = BLOCK,
        keep_states: bool = True,
    ) -> None:
        super().__init__(rngs, block, keep_states)
        self._draw = draw
        self._blocks = np.zeros((len(rngs), block, *shape), dtype=dtype)
        self._every = np.arange(len(rngs))

    def _fill(self, i: int, rng: np.random.Generator) -> None:
        self._blocks[i] = self._draw(rng, self.block)

    def _advance(self, i: int, rng: np.random.Generator, used: int) -> None:
        if used:
            self._draw(rng, used)

    def take(self, rows: np.ndarray | None = None) -> np.ndarray:
        """One step's draws for ``rows`` (all instances if ``None``), shape ``(len(rows), *shape)``."""
        self._ensure(rows)
        if rows is None:
            out = self._blocks[self._every, self._pos]
            self._pos += 1
        else:
            out = self._blocks[rows, self._pos[rows]]
            self._pos[rows] += 1
        return out

    def untake(self, rows: np.ndarray) -> None:
        """Give back the last :meth:`take` of ``rows`` (their draws were not used): the next take or
        ``sync`` sees them as never drawn. Exact, since the block holds them."""
        self._pos[rows] -= 1


class RawStream(_Stream):
    """The raw 64-bit output of each generator, turned into ``random()`` and ``integers(n)`` as NumPy does.

    Only PCG64 (NumPy's default, used by ``gymnasium.utils.seeding``) is supported: the cached
    upper 32 bits (``has_uint32``/``uinteger`` of its state) are part of what is emulated.
    """

    def __init__(
        self, rngs: Sequence[np.random.Generator | None], block: int = BLOCK, keep_states: bool = True
    ) -> None:
        super().__init__(rngs, block, keep_states)
        num_envs = len(rngs)
        self._blocks = np.zeros((num_envs, block), dtype=np.uint64)
        self._every = np.arange(num_envs)
        self._has32 = np.zeros(num_envs, dtype=bool)
        self._u32 = np.zeros(num_envs, dtype=np.uint64)

    def _start_block(self, i: int, rng: np.random.Generator, fresh: bool) -> dict[str, Any] | None:
        if not (fresh or self.keep_states):
            return None  # the emulated cache carries on; nothing to read or keep
        state = rng.bit_generator.state
        if state["bit_generator"] != "PCG64":
            raise ValueError(f"RawStream needs PCG64 generators, got {state['bit_generator']}")
        if fresh:  # the generator's own cache is the true one
            self._has32[i] = bool(state["has_uint32"])
            self._u32[i] = state["uinteger"]
        else:  # a used-up block: the emulated cache is the true one
            state["has_uint32"] = int(self._has32[i])
            state["uinteger"] = int(self._u32[i])
        return state if self.keep_states else None

    def _fill(self, i: int, rng: np.random.Generator) -> None:
        self._blocks[i] = rng.bit_generator.random_raw(self.block)

    def _advance(self, i: int, rng: np.random.Generator, used: int) -> None:
        if used:
            rng.bit_generator.random_raw(used)
        state = rng.bit_generator.state
        state["has_uint32"] = int(self._has32[i])
        state["uinteger"] = int(self._u32[i])
        rng.bit_generator.state = state

    def _raw(self, rows: np.ndarray | None) -> np.ndarray:
        self._ensure(rows)
        if rows is None:  # every instance, in order: no gather of positions
            out = self._blocks[self._every, self._pos]
            self._pos += 1
            return out
        out = self._blocks[rows, self._pos[rows]]
        self._pos[rows] += 1
        return out

    def random(self, rows: np.ndarray | None) -> np.ndarray:
        """``rng.random()`` of each generator in ``rows`` (all if ``None``; float64, one raw word each)."""
        return (self._raw(rows) >> _SHIFT11).astype(np.float64) * _DOUBLE_SCALE

    def uniform(self, rows: np.ndarray, low: Any, high: Any, size: int) -> np.ndarray:
        """``rng.uniform(low, high, size=size)`` of each generator in ``rows``, shape ``(len(rows), size)``.

        NumPy computes ``low + (high - low) * random()`` element by element; so does this.
        """
        pos = self._pos[rows]
        if len(rows) and int(pos.max()) + size <= self.block:  # the common case: one gather
            raw = self._blocks[rows[:, None], pos[:, None] + np.arange(size)]
            self._pos[rows] = pos + size
            u = (raw >> _SHIFT11).astype(np.float64) * _DOUBLE_SCALE
        else:  # some block runs out within the draw: word by word, refilling on the way
            u = np.empty((len(rows), size))
            for k in range(size):
                u[:, k] = self.random(rows)
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        return low + (high - low) * u

    def _uint32(self, rows: np.ndarray) -> np.ndarray:
        # PCG64's next_uint32: the cached upper half if there is one, else a new word's lower
        # half (its upper half is cached).
        self._ensure(rows)  # a forgotten block's cache is only known once its generator is read
        out = np.empty(len(rows), dtype=np.uint64)
        cached = self._has32[rows]
        out[cached] = self._u32[rows[cached]]
        fresh_rows = rows[~cached]
        if len(fresh_rows):
            raw = self._raw(fresh_rows)
            out[~cached] = raw & _LOW32
            self._u32[fresh_rows] = raw >> _SHIFT32
        self._has32[rows] = ~cached
        return out

    def integers(self, rows: np.ndarray, n: int) -> np.ndarray:
        """``rng.integers(n)`` of each generator in ``rows`` for ``1 <= n < 2**32`` (int64)."""
        if not 1 <= n < 2**32:
            raise ValueError(f"n must be an integer in [1, 2**32), got {n}")
        if n == 1:  # as NumPy: a range of one value draws nothing
            return np.zeros(len(rows), dtype=np.int64)
        # Lemire's method on 32-bit words, with NumPy's rejection threshold.
        n64 = np.uint64(n)
        threshold = np.uint64((2**32 - n) % n)
        out = np.empty(len(rows), dtype=np.int64)
        todo = np.arange(len(rows))
        while len(todo):
            m = self._uint32(rows[todo]) * n64
            accepted = (m & _LOW32) >= threshold
            out[todo[accepted]] = (m[accepted] >> _SHIFT32).astype(np.int64)
            todo = todo[~accepted]
        return out
