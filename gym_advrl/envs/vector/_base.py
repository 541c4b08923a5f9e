"""What every natively vectorized env shares: arguments, seeding, autoreset, infos, rendering.

A subclass holds the state of all instances in arrays and implements four hooks:

* ``_reset_rows(rows, options) -> dict``: draw the starting state of the instances ``rows``
  from their own generators (``self._rngs[i]``), with the single env's calls in the single
  env's order, and return their reset infos as ``{key: array over rows}`` (nested dicts allowed);
* ``_step_rows(actions, rows) -> (reward, terminated, info)``: advance the instances ``rows``
  (``None`` for all) with their already checked actions;
* ``_observations() -> array``: the batched observation of every instance;
* ``_painter_state(i)``: copy instance ``i`` into the single env used to draw frames.

The base class turns these into Gymnasium 1.x's ``reset``/``step`` with per-instance seeding
(instance ``i`` reset with seed ``s_i`` reproduces the single env reset with ``s_i``; an int seed
``s`` means ``s + i`` as in ``SyncVectorEnv``), time limits (truncation), the three autoreset
modes and ``options["reset_mask"]``, and infos in Gymnasium's vector format (``info[key]`` an
array over instances, ``info["_" + key]`` the mask of instances that have it; see
:mod:`gym_advrl.envs.vector._infos`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gym_advrl.envs.vector._infos import (
    _drop_rows,
    _final_info,
    _object_rows,
    _take_rows,
    add_info,
)
from gym_advrl.envs.vector._streams import _Stream
from gym_advrl.utils.validation import Interval, check_choice, check_int

#: Accepted ``autoreset_mode`` values (the enum or its string value).
AUTORESET_MODES = tuple(AutoresetMode)


def check_num_envs(num_envs: Any) -> int:
    """``num_envs`` as a positive ``int``, else ``ValueError`` naming it."""
    return check_int("num_envs", num_envs, 1)


def check_autoreset_mode(mode: Any) -> AutoresetMode:
    """An :class:`~gymnasium.vector.AutoresetMode` from the enum or its string value."""
    allowed = tuple(m.value for m in AutoresetMode)
    if isinstance(mode, AutoresetMode):
        return mode
    return AutoresetMode(check_choice("autoreset_mode", mode, allowed))


def per_instance(name: str, value: Any, num_envs: int, interval: Interval | None = None) -> np.ndarray:
    """A per-instance float argument: a number (shared) or a sequence of ``num_envs`` numbers.

    Returns a float64 array of shape ``(num_envs,)``; a wrong length, a non-number, NaN, inf or
    a value outside ``interval`` raise ``ValueError`` naming ``name``.
    """
    if isinstance(value, str | bytes | Mapping):
        raise ValueError(
            f"{name} must be a number or a sequence of num_envs={num_envs} numbers, got {value!r}"
        )
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or a sequence of num_envs={num_envs} numbers, got {value!r}"
        ) from None
    if array.ndim == 0:
        if interval is not None:
            interval.check(name, array.item())
        elif array.dtype.kind not in "iuf" or not np.isfinite(array):
            raise ValueError(f"{name} must be a finite real number, got {value!r}")
        return np.full(num_envs, float(array.item()))
    if array.ndim != 1 or len(array) != num_envs:
        raise ValueError(
            f"{name} must be a number or a sequence of num_envs={num_envs} numbers, got shape {array.shape}"
        )
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if interval is not None:
        for i, item in enumerate(array.tolist()):
            interval.check(f"{name}[{i}]", item)
    elif not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array.astype(np.float64)


def vector_metadata(render_modes: list[str], render_fps: int) -> dict[str, Any]:
    """A vector env's ``metadata``: its render modes and frame rate, ``NextStep`` autoreset by default."""
    return {"render_modes": render_modes, "render_fps": render_fps, "autoreset_mode": AutoresetMode.NEXT_STEP}


def batched_box_actions(actions: Any, space: spaces.Box, num_envs: int) -> np.ndarray:
    """Check a batch of Box actions: shape ``(num_envs, *space.shape)`` float64, clipped to the box.

    Non-numbers and NaN/inf raise ``ValueError``, as for the single envs; a batch with fewer
    axes and as many numbers (a flat ``(num_envs,)`` batch for a ``(1,)``-shaped space) is
    reshaped, row-major. A batch with as many axes but another shape (a transposed batch) is
    refused: reshaping it would hand the instances each other's actions.
    """
    try:
        array = np.asarray(actions)
    except (TypeError, ValueError):
        raise ValueError(f"actions must be numeric with shape {(num_envs, *space.shape)}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"actions must be numeric (int or float), got dtype {array.dtype}")
    shape = (num_envs, *space.shape)
    if array.shape != shape:
        if array.size == int(np.prod(shape)) and array.ndim < len(shape):
            array = array.reshape(shape)
        else:
            raise ValueError(f"actions must have shape {shape}, got shape {array.shape}")
    # One reduction in the common case: a finite sum means finite actions (a non-finite sum of
    # finite actions, an overflow, is told apart by the full check).
    if not math.isfinite(array.sum()) and not np.isfinite(array).all():
        raise ValueError("actions must be finite (no NaN or inf)")
    return np.clip(array, space.low, space.high, dtype=np.float64)


def batched_discrete_actions(actions: Any, space: spaces.Discrete, num_envs: int) -> np.ndarray:
    """Check a batch of Discrete actions: ``(num_envs,)`` int64 in the space, else ``ValueError``.

    Integer-valued floats are accepted, as by the single envs.
    """
    try:
        array = np.asarray(actions)
    except (TypeError, ValueError):
        raise ValueError(f"actions must be {num_envs} integers") from None
    if array.shape != (num_envs,):
        if array.size == num_envs and array.ndim <= 2:
            array = array.reshape(num_envs)
        else:
            raise ValueError(f"actions must have shape ({num_envs},), got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError("actions must be finite integers (no NaN or inf)")
        if not np.all(array == np.round(array)):
            raise ValueError(f"actions must be integers, got {array.tolist()}")
    elif array.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    low, high = space.start, space.start + space.n - 1
    if array.min() < low or array.max() > high:
        raise ValueError(f"actions must be integers in [{low}, {high}], got {array.tolist()}")
    return array


class RecentValues:
    """The last ``length`` values of instances ``0 .. count - 1`` (those ``render()`` draws): the
    history a single env keeps only to draw it (a trail, a chart), kept only when rendering.

    :param count: how many instances (the first ones) keep their history
    :param length: how many values each keeps, the newest last
    :param shape: shape of one value
    """

    def __init__(self, count: int, length: int, shape: tuple[int, ...] = ()) -> None:
        self.values = np.zeros((count, length, *shape))
        self.sizes = np.zeros(count, dtype=np.int64)

    def start(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Begin the history of ``rows`` (new episodes) with ``values[k]`` for ``rows[k]``."""
        kept = rows < len(self.sizes)
        self.sizes[rows[kept]] = 1
        self.values[rows[kept], -1] = values[kept]

    def append(self, values: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Add ``values[i]`` (``values`` over every instance of the vector env) to the history of
        each kept instance ``i`` among ``rows`` (all if ``None``)."""
        count = len(self.sizes)
        kept = np.arange(count) if rows is None else rows[rows < count]
        self.values[kept] = np.concatenate((self.values[kept, 1:], values[kept, None]), axis=1)
        self.sizes[kept] = np.minimum(self.sizes[kept] + 1, self.values.shape[1])

    def get(self, i: int) -> np.ndarray:
        """The history of instance ``i``, oldest first (a copy)."""
        return self.values[i, self.values.shape[1] - self.sizes[i] :].copy()


class AdvRLVectorEnv(VectorEnv):
    """Base class of the natively vectorized gym_advrl envs (see the module docstring).

    :param num_envs: number of instances, a positive integer
    :param max_episode_steps: time limit (truncation) of every instance; ``None`` for none
    :param render_mode: ``None`` or one of ``metadata["render_modes"]``
    :param autoreset_mode: ``"NextStep"`` (default, as Gymnasium), ``"SameStep"`` or ``"Disabled"``
    :param render_envs: how many instances ``render()`` draws (the first ones); ``None`` for all
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}
    #: The single env that draws frames; ``None`` if the family has no frames.
    single_env_class: type[gym.Env] | None = None
    #: Keys of ``reset(options=...)`` besides ``reset_mask``.
    reset_option_keys: tuple[str, ...] = ()
    #: ``_step_rows(actions, None)`` may step instances that are about to be reset (their results
    #: are discarded): true when a step draws no random numbers. Stepping all rows avoids
    #: gathering and scattering every array through an index.
    step_all_rows: bool = True
    #: (With ``step_all_rows``, ``_discard_rows(rows)`` is called for the instances about to be
    #: reset, before their reset: a step that drew random numbers for them gives them back.)
    #: ``_reset_rows`` draws from ``self._rngs`` directly (not only through ``self._streams``),
    #: so the streams must hand the generators back at the single env's position first.
    reset_uses_generators: bool = True

    def __init__(
        self,
        num_envs: int,
        single_observation_space: spaces.Space,
        single_action_space: spaces.Space,
        max_episode_steps: int | None,
        render_mode: str | None,
        autoreset_mode: AutoresetMode | str,
        render_envs: int | None,
    ) -> None:
        self.num_envs = check_num_envs(num_envs)
        self.max_episode_steps = (
            None if max_episode_steps is None else check_int("max_episode_steps", max_episode_steps, 1)
        )
        if render_mode is not None:
            check_choice("render_mode", render_mode, type(self).metadata.get("render_modes", ()))
        self.render_mode = render_mode
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.render_envs = (
            self.num_envs if render_envs is None else check_int("render_envs", render_envs, 1, self.num_envs)
        )

        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)

        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._rng_seeds: list[int | None] = [None] * self.num_envs
        self._streams: list[_Stream] = []
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._ready = False
        self._all_rows = np.arange(self.num_envs)
        self._painter: gym.Env | None = None

    # ------------------------------------------------------------------ hooks
    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _step_rows(
        self, actions: np.ndarray, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    def _observations(self) -> np.ndarray:
        raise NotImplementedError

    def _discard_rows(self, rows: np.ndarray) -> None:
        """Undo what ``_step_rows(actions, None)`` drew for ``rows``, which are reset instead."""

    def _check_actions(self, actions: Any) -> np.ndarray:
        """The batch of actions checked against ``single_action_space`` (Discrete or Box)."""
        space = self.single_action_space
        if isinstance(space, spaces.Discrete):
            return batched_discrete_actions(actions, space, self.num_envs)
        return batched_box_actions(actions, space, self.num_envs)

    def _add_stream(self, stream: _Stream) -> Any:
        """Register ``stream`` (drawing from ``self._rngs``) for seeding and syncing; return it."""
        self._streams.append(stream)
        return stream

    def _make_painter(self) -> gym.Env:
        raise NotImplementedError

    def _painter_state(self, painter: gym.Env, i: int) -> None:
        raise NotImplementedError

    def _check_reset_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(map(str, set(options) - set(self.reset_option_keys)))
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {unknown}; allowed options are {('reset_mask', *self.reset_option_keys)}"
            )
        return options

    # ------------------------------------------------------------------ seeding
    @property
    def np_random_seeds(self) -> list[int | None]:
        """The seed each instance's generator was last seeded with (``None``: fresh entropy)."""
        return list(self._rng_seeds)

    def _seed_rows(self, rows: np.ndarray, seeds: list[int | None]) -> None:
        reseed = [i for i in rows.tolist() if seeds[i] is not None or self._rngs[i] is None]
        if reseed:
            reseed_rows = np.asarray(reseed)
            for stream in self._streams:
                stream.forget(reseed_rows)
            for i in reseed:
                self._rngs[i], self._rng_seeds[i] = seeding.np_random(seeds[i])
        if self.reset_uses_generators:
            for stream in self._streams:
                stream.sync(rows)

    def _seed_list(self, seed: Any) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        if isinstance(seed, str | bytes) or not hasattr(seed, "__len__") or len(seed) != self.num_envs:
            raise ValueError(
                f"seed must be None, an int or a list of num_envs={self.num_envs} ints or None, got {seed!r}"
            )
        return [None if s is None else check_int(f"seed[{i}]", s, 0) for i, s in enumerate(seed)]

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all instances (or those of ``options["reset_mask"]``).

        :param seed: ``None`` (keep each generator, fresh entropy the first time), an int ``s``
            (instance ``i`` gets ``s + i``) or a list of ``num_envs`` ints or ``None``
        :param options: the single env's reset options, applied to every reset instance, plus
            ``reset_mask``: a boolean array of shape ``(num_envs,)`` choosing the instances
        :return: the observations of all instances and the reset infos of the reset ones
        """
        seeds = self._seed_list(seed)
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        options = dict(options or {})
        reset_mask = options.pop("reset_mask", None)
        options = self._check_reset_options(options)
        if reset_mask is None:
            rows = self._all_rows
        else:
            reset_mask = np.asarray(reset_mask)
            if reset_mask.dtype != np.bool_ or reset_mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must be a boolean array of shape ({self.num_envs},), "
                    f"got dtype {reset_mask.dtype} and shape {reset_mask.shape}"
                )
            if not self._ready and not reset_mask.all():
                raise ValueError("the first reset must reset every instance (options['reset_mask'] all True)")
            rows = np.flatnonzero(reset_mask)
        self._seed_rows(rows, seeds)
        infos = add_info({}, self._reset_rows(rows, options), rows, self.num_envs) if len(rows) else {}
        self._elapsed[rows] = 0
        self._done[rows] = False
        self._ready = True
        return self._observations(), infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every instance; finished ones are reset as ``autoreset_mode`` says.

        :param actions: one action per instance, batched as ``action_space``
        :return: observations, rewards (float64), terminations, truncations, infos
        """
        if not self._ready:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        actions = self._check_actions(actions)
        mode = self.autoreset_mode
        resetting = self._done if mode is AutoresetMode.NEXT_STEP else None
        if mode is AutoresetMode.DISABLED and self._done.any():
            raise ValueError(
                "autoreset_mode is Disabled and instances "
                f"{np.flatnonzero(self._done).tolist()} have finished; reset them with options['reset_mask']"
            )
        if resetting is not None and resetting.any():
            rows = np.flatnonzero(resetting)
            infos: dict[str, Any] = {}
            if self.step_all_rows:
                reward, terminated, step_info = self._step_rows(actions, None)
                self._discard_rows(rows)
                reward[rows] = 0.0
                terminated[rows] = False
                if step_info:
                    active = np.flatnonzero(~resetting)
                    add_info(infos, _take_rows(step_info, active), active, self.num_envs)
            else:
                active = np.flatnonzero(~resetting)
                reward = np.zeros(self.num_envs)
                terminated = np.zeros(self.num_envs, dtype=bool)
                if len(active):
                    reward[active], terminated[active], step_info = self._step_rows(actions[active], active)
                    if step_info:
                        add_info(infos, step_info, active, self.num_envs)
            self._elapsed += 1
            if self.reset_uses_generators:
                self._seed_rows(rows, [None] * self.num_envs)
            add_info(infos, self._reset_rows(rows, {}), rows, self.num_envs)
            self._elapsed[rows] = 0  # so their truncation below is False (max_episode_steps >= 1)
        else:
            reward, terminated, step_info = self._step_rows(actions, None)
            infos = add_info({}, step_info, self._all_rows, self.num_envs) if step_info else {}
            self._elapsed += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:
            truncated = self._elapsed >= self.max_episode_steps
        done = terminated | truncated
        observations = self._observations()
        if mode is AutoresetMode.SAME_STEP and done.any():
            rows = np.flatnonzero(done)
            final = {"final_obs": _object_rows(observations[rows]), "final_info": _final_info(infos, rows)}
            if self.reset_uses_generators:
                self._seed_rows(rows, [None] * self.num_envs)
            reset_info = self._reset_rows(rows, {})
            self._elapsed[rows] = 0
            # The final info keeps the last step's entries; the reset info replaces them.
            infos = _drop_rows(infos, rows)
            add_info(infos, reset_info, rows, self.num_envs)
            infos["final_obs"] = np.full(self.num_envs, None, dtype=object)
            infos["final_obs"][rows] = final["final_obs"]
            infos["_final_obs"] = done.copy()
            infos["final_info"] = final["final_info"]
            infos["_final_info"] = done.copy()
            observations = self._observations()
            self._done = np.zeros(self.num_envs, dtype=bool)
        else:
            self._done = done
        return observations, reward, terminated, truncated, infos

    # ------------------------------------------------------------------ rendering
    def render(self) -> tuple[Any, ...] | None:
        """Frames (or text) of the first ``render_envs`` instances, drawn by the single env's code."""
        if self.render_mode is None:
            gym.logger.warn("You are calling render method without specifying any render mode.")
            return None
        if not self._ready:
            raise gym.error.ResetNeeded("Cannot call render() before reset()")
        if self._painter is None:
            self._painter = self._make_painter()
        frames = []
        for i in range(self.render_envs):
            self._painter_state(self._painter, i)
            frames.append(self._painter.render())
        return tuple(frames)

    def close_extras(self, **kwargs: Any) -> None:
        if self._painter is not None:
            self._painter.close()
            self._painter = None


class TemplateVectorEnv(AdvRLVectorEnv):
    """A vector env built around one single env, ``template``: the single env checks the
    arguments, gives the spaces and draws the frames (its state set to an instance's first).

    :param template: the single env, made with the family's arguments
    The other arguments are :class:`AdvRLVectorEnv`'s.
    """

    def __init__(
        self,
        template: gym.Env,
        num_envs: int,
        max_episode_steps: int | None,
        render_mode: str | None,
        autoreset_mode: AutoresetMode | str,
        render_envs: int | None,
    ) -> None:
        self.template = template
        super().__init__(
            num_envs,
            template.observation_space,
            template.action_space,
            max_episode_steps,
            render_mode,
            autoreset_mode,
            render_envs,
        )

    def _make_painter(self) -> gym.Env:
        self.template._init_render(self.render_mode)
        return self.template
