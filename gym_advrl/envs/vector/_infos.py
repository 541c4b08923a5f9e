"""Infos in Gymnasium's vector format: one dict of arrays over instances, each key with its mask.

``add_info`` merges per-row values into such a dict (nested dicts included, as ``SyncVectorEnv``
builds them); :class:`Partial` marks an entry only some rows report, :class:`FullRows` one given
for every instance of which only the merged rows count. The private helpers split and trim infos
for the autoreset modes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class Partial:
    """An info entry that only some rows report: ``values`` over all rows, ``present`` their mask."""

    __slots__ = ("present", "values")

    def __init__(self, values: np.ndarray, present: np.ndarray) -> None:
        self.values, self.present = np.asarray(values), np.asarray(present, dtype=bool)

    def take(self, rows: np.ndarray) -> Partial:
        return Partial(self.values[rows], self.present[rows])


class FullRows:
    """An info entry given for every instance (``values`` of length ``num_envs``), of which the
    merged rows are taken: one ``where`` instead of a gather, a fill and a scatter."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def take(self, rows: np.ndarray) -> FullRows:
        return self


def add_info(
    infos: dict[str, Any],
    values: Mapping[str, Any],
    rows: np.ndarray,
    num_envs: int,
    row_mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """Merge ``{key: array over rows}`` into ``infos`` in Gymnasium's vector format, in place.

    Nested dicts become nested vector infos, as ``SyncVectorEnv`` builds them; every key gets a
    ``"_" + key`` boolean mask of the instances that report it (a :class:`Partial` entry only
    for its ``present`` rows). ``row_mask`` is ``rows`` as a mask, if the caller has it.
    """
    if row_mask is None:
        row_mask = np.zeros(num_envs, dtype=bool)
        row_mask[rows] = True
    for key, value in values.items():
        key_rows, key_mask = rows, row_mask
        if isinstance(value, Partial):
            key_rows, value = rows[value.present], value.values[value.present]
            if not len(key_rows):
                continue
            key_mask = np.zeros(num_envs, dtype=bool)
            key_mask[key_rows] = True
        if isinstance(value, Mapping):
            array = add_info(infos.get(key, {}), value, key_rows, num_envs, key_mask)
        elif isinstance(value, FullRows):
            full = value.values
            array = infos.get(key)
            if array is None:
                where = key_mask.reshape(-1, *([1] * (full.ndim - 1)))
                array = np.where(where, full, np.zeros((), dtype=full.dtype))
            else:
                array[key_rows] = full[key_rows]
        else:
            value = np.asarray(value)
            array = infos.get(key)
            if array is None:
                array = np.zeros((num_envs, *value.shape[1:]), dtype=value.dtype)
            array[key_rows] = value
        mask = infos.get(f"_{key}")
        if mask is None:
            mask = key_mask.copy()
        else:
            mask |= key_mask
        infos[key], infos[f"_{key}"] = array, mask
    return infos


def _take_rows(values: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    return {
        k: _take_rows(v, rows)
        if isinstance(v, Mapping)
        else v.take(rows)
        if isinstance(v, Partial | FullRows)
        else np.asarray(v)[rows]
        for k, v in values.items()
    }


def _object_rows(rows: np.ndarray) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    for k, row in enumerate(rows):
        out[k] = row.copy() if isinstance(row, np.ndarray) else row
    return out


def _entries(infos: dict[str, Any]) -> Any:
    """``(key, value, mask)`` of every entry of a vector info (its ``"_" + key`` mask)."""
    return ((key, value, infos[f"_{key}"]) for key, value in infos.items() if not key.startswith("_"))


def _final_info(infos: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The step infos of ``rows`` only (masks cleared elsewhere), as ``SyncVectorEnv``'s ``final_info``."""
    out: dict[str, Any] = {}
    for key, value, mask in _entries(infos):
        keep = np.zeros_like(mask)
        keep[rows] = mask[rows]
        if not keep.any():
            continue
        if isinstance(value, dict):
            out[key] = _final_info(value, rows)
        else:
            array = np.zeros_like(value)
            array[keep] = value[keep]
            out[key] = array
        out[f"_{key}"] = keep
    return out


def _drop_rows(infos: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value, mask in _entries(infos):
        mask = mask.copy()
        mask[rows] = False
        if not mask.any():
            continue
        out[key] = _drop_rows(value, rows) if isinstance(value, dict) else value
        out[f"_{key}"] = mask
    return out
