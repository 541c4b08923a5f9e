"""A Gymnasium ``VectorEnv`` presented as a Stable-Baselines3 ``VecEnv``.

Gymnasium 1.x vector envs (``gym.make_vec``, natively vectorized ones in particular) and SB3's
``VecEnv`` differ in three ways that this adapter bridges:

* SB3 resets a finished env within the same ``step`` and hands the last observation over in
  ``info["terminal_observation"]``. A Gymnasium env in ``SameStep`` mode does this too (its
  ``final_obs``); in ``NextStep`` (the default) or ``Disabled`` mode the adapter resets the finished
  instances at once with ``reset(options={"reset_mask": done})``, so every mode gives SB3's
  semantics.
* SB3 infos are a list of dicts, one per env; Gymnasium's are one dict of arrays with ``_key``
  masks. Only the entries an instance reports (its mask) are copied into its dict; truncation
  is reported as ``info["TimeLimit.truncated"]`` for the instances that finished.
* ``seed``/``set_options`` apply at the next ``reset``, as in SB3; ``get_attr``/``env_method``
  reach the one vector env (see their docstrings).

Usage::

    import gymnasium as gym
    from stable_baselines3 import PPO
    from sb3_ext.common.vec_env import GymnasiumVecEnv

    env = GymnasiumVecEnv(gym.make_vec("AdvRL/Pendulum-v0", 64))
    PPO("MlpPolicy", env).learn(100_000)

Wrap it in SB3's ``VecMonitor`` for episode statistics (``rollout/ep_rew_mean``), as
``advrl train --n-envs N`` does.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)


def split_infos(
    infos: dict[str, Any], num_envs: int, rows: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """Gymnasium vector infos (``{key: array, "_key": mask}``, nested) as one dict per instance.

    :param infos: the vector env's info dict
    :param num_envs: number of instances
    :param rows: only these instances get their entries (the others an empty dict); all if ``None``
    """
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    wanted = None if rows is None else set(rows)
    _split_into(out, infos, wanted)
    return out


def _split_into(out: list[dict[str, Any]], infos: dict[str, Any], wanted: set[int] | None) -> None:
    for key, value in infos.items():
        if key.startswith("_") or f"_{key}" not in infos:
            continue
        present = np.flatnonzero(infos[f"_{key}"]).tolist()
        if wanted is not None:
            present = [i for i in present if i in wanted]
        if not present:
            continue
        if isinstance(value, dict):
            nested: list[dict[str, Any]] = [{} for _ in range(len(out))]
            _split_into(nested, value, set(present))
            for i in present:
                out[i][key] = nested[i]
        else:
            for i in present:
                item = value[i]
                out[i][key] = item.item() if isinstance(item, np.generic) else item


def _instance_obs(obs: Any, i: int) -> Any:
    """A copy of instance ``i``'s observation in a batch of observations: an array, or a dict or
    tuple of arrays (``Dict`` and ``Tuple`` spaces)."""
    if isinstance(obs, dict):
        return {key: _instance_obs(value, i) for key, value in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_instance_obs(value, i) for value in obs)
    return obs[i].copy()


class GymnasiumVecEnv(VecEnv):
    """Present a Gymnasium ``VectorEnv`` (e.g. ``gym.make_vec("AdvRL/Pendulum-v0", 256)``) as an SB3 ``VecEnv``.

    :param vector_env: the Gymnasium vector env; any ``autoreset_mode`` (``NextStep`` and
        ``Disabled`` envs must accept ``reset(options={"reset_mask": ...})``, as Gymnasium's
        ``SyncVectorEnv``/``AsyncVectorEnv`` and every ``gym_advrl`` native vector env do)
    """

    def __init__(self, vector_env: gym.vector.VectorEnv) -> None:
        if not isinstance(vector_env, gym.vector.VectorEnv):
            raise ValueError(
                f"vector_env must be a gymnasium.vector.VectorEnv, got {type(vector_env).__name__}"
            )
        self.env = vector_env
        mode = vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.autoreset_mode = mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)
        self._actions: np.ndarray | None = None
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )

    # ------------------------------------------------------------------ stepping
    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options = self._options[0] if self._options else {}
        if any(o != options for o in self._options):
            raise ValueError(
                "set_options: a Gymnasium vector env takes one options dict for all instances; "
                f"got different options per env: {self._options}"
            )
        obs, infos = self.env.reset(seed=seeds, options=dict(options) or None)
        self.reset_infos = split_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self.env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        done_rows = np.flatnonzero(dones)
        if self.autoreset_mode is AutoresetMode.SAME_STEP:
            final_obs = infos.get("final_obs")
            final_infos = infos.get("final_info", {})
            step_infos = split_infos(infos, self.num_envs)
            finished = split_infos(final_infos, self.num_envs, done_rows) if len(done_rows) else None
            for i in done_rows.tolist():
                # The last step's info for the finished episode, the reset info for the new one.
                self.reset_infos[i] = {
                    k: v for k, v in step_infos[i].items() if k not in ("final_obs", "final_info")
                }
                step_infos[i] = finished[i]
                step_infos[i]["terminal_observation"] = final_obs[i]
        else:
            step_infos = split_infos(infos, self.num_envs)
            if len(done_rows):
                # Copied before the reset, which may write the new observations into the same arrays.
                terminals = [_instance_obs(obs, i) for i in done_rows.tolist()]
                new_obs, reset_infos = self.env.reset(options={"reset_mask": dones.copy()})
                resets = split_infos(reset_infos, self.num_envs, done_rows)
                for k, i in enumerate(done_rows.tolist()):
                    step_infos[i]["terminal_observation"] = terminals[k]
                    self.reset_infos[i] = resets[i]
                obs = new_obs
        for i in done_rows.tolist():
            step_infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(rewards, dtype=np.float32), dones, step_infos

    def close(self) -> None:
        self.env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.env.render()
        return [None] * self.num_envs if frames is None else list(frames)

    # ------------------------------------------------------------------ attributes and methods
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int | np.integer):
            return [int(indices)]
        return [int(i) for i in indices]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, per instance: an array with a leading ``num_envs`` axis
        (per-instance state or physics) gives each instance its entry, anything else is shared."""
        target = self.env if attr_name == "render_mode" else self.env.unwrapped
        value = getattr(target, attr_name)
        rows = self._indices(indices)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == self.num_envs:
            return [value[i] for i in rows]
        return [value for _ in rows]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env: for all instances, or the entries of the chosen
        instances of a per-instance array attribute."""
        target = self.env.unwrapped
        rows = self._indices(indices)
        current = getattr(target, attr_name, None)
        if isinstance(current, np.ndarray) and current.ndim >= 1 and current.shape[0] == self.num_envs:
            current[rows] = value
        elif len(rows) == self.num_envs:
            setattr(target, attr_name, value)
        else:
            raise ValueError(
                f"set_attr({attr_name!r}) with indices={indices}: the vector env holds one value for all "
                "instances; pass indices=None"
            )

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the vector env. A method whose first parameter is ``i`` (an instance
        index, e.g. ``QuantumGateVectorEnv.to_qasm``) is called once per chosen instance; any
        other method once, its result given to every chosen instance."""
        method = getattr(self.env.unwrapped, method_name)
        rows = self._indices(indices)
        parameters = list(inspect.signature(method).parameters)
        if parameters and parameters[0] == "i":
            return [method(i, *method_args, **method_kwargs) for i in rows]
        result = method(*method_args, **method_kwargs)
        return [result for _ in rows]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Always ``False``: the instances of a vector env are not separate, wrappable envs."""
        return [False for _ in self._indices(indices)]
