"""Natively vectorized CausalSCM: one structural-equation realization per step for all instances."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_advrl.envs.causal.env import CausalSCMEnv
from gym_advrl.envs.causal.scm import ACTION
from gym_advrl.envs.vector._base import TemplateVectorEnv, check_num_envs, vector_metadata
from gym_advrl.envs.vector._infos import Partial
from gym_advrl.envs.vector._streams import BlockStream


class CausalSCMVectorEnv(TemplateVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.causal.env.CausalSCMEnv` stepped as arrays.

    All instances share the SCM (graph, weights, noise scales); each draws its exogenous noise
    from its own generator, so instance ``i`` reproduces ``gym.make("AdvRL/CausalSCM-v0", ...)``
    reset with the same seed and given the same actions. A step solves the structural equations
    once for all instances (``scm.realize`` on ``(num_envs, n_vars)`` noise); with
    ``action_type="do"`` once per distinct intervention among the actions. Infos as the single
    env's: ``info["variables"][name]`` arrays over instances and ``info["intervention"]``
    (a variable's entry only for the instances that intervened on it).

    :param env_kwargs: :class:`~gym_advrl.envs.causal.env.CausalSCMEnv`'s arguments (``graph``,
        ``action_type``, ``confounded``, ``target``, ...), checked by it
    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s.
    """

    metadata = vector_metadata(["rgb_array", "ansi"], 4)
    single_env_class = CausalSCMEnv
    step_all_rows = False  # every step draws the next context's noise
    reset_uses_generators = False  # every draw (reset and step alike) comes from a BlockStream

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 50,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_envs: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        n = check_num_envs(num_envs)
        template = CausalSCMEnv(**env_kwargs)
        super().__init__(template, n, max_episode_steps, render_mode, autoreset_mode, render_envs)
        self.scm, self.action_type = template.scm, template.action_type
        self.target, self.levels, self.intervenable = template.target, template.levels, template.intervenable
        self._observed_idx, self._outcome_idx = template._observed_idx, template._outcome_idx
        d = self.scm.n_vars
        self._confounded = bool(self.scm.confounded)
        width = d + int(self._confounded)
        # One context per reset or step: n_vars standard normals, then the confounder's.
        self._contexts = self._add_stream(
            BlockStream(
                self._rngs, lambda rng, k: rng.standard_normal((k, width)), (width,), keep_states=False
            )
        )
        self.noise = np.zeros((n, d))
        self.hidden = np.zeros(n)
        self.observed = np.zeros((n, len(self._observed_idx)))
        self.last_values = np.full((n, d), np.nan)  # NaN: no step yet this episode
        self.last_reward = np.full(n, np.nan)
        self.last_action = np.zeros(n)
        self.last_code = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)

    def _check_actions(self, actions: Any) -> np.ndarray:
        checked = super()._check_actions(actions)
        return checked[:, 0] if self.action_type == "additive" else checked

    def _draw_contexts(self, rows: np.ndarray | None) -> None:
        draws = self._contexts.take(rows)
        d = self.scm.n_vars
        sel = slice(None) if rows is None else rows
        self.noise[sel] = draws[:, :d]
        self.hidden[sel] = draws[:, d] if self._confounded else 0.0
        self.observed[sel] = self.scm.realize(self.noise[sel], self.hidden[sel])[:, self._observed_idx]

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        self._draw_contexts(rows)
        self.t[rows] = 0
        self.last_values[rows] = np.nan
        self.last_reward[rows] = np.nan
        return {}

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        rows_index = self._all_rows if rows is None else rows
        noise, hidden = self.noise[rows_index], self.hidden[rows_index]
        count = len(rows_index)
        intervention: dict[str, Any] = {}
        if self.action_type == "additive":
            values = self.scm.realize(noise, hidden, actions)
        else:
            values = np.empty((count, self.scm.n_vars))
            per_variable = {v: np.zeros(count) for v in self.intervenable}
            present = {v: np.zeros(count, dtype=bool) for v in self.intervenable}
            for code in np.unique(actions).tolist():
                group = actions == code
                if code == 0:
                    values[group] = self.scm.realize(noise[group], hidden[group])
                    continue
                variable, level = divmod(code - 1, len(self.levels))
                name = self.intervenable[variable]
                values[group] = self.scm.realize(noise[group], hidden[group], 0.0, {name: self.levels[level]})
                per_variable[name][group] = self.levels[level]
                present[name][group] = True
            intervention = {v: Partial(per_variable[v], present[v]) for v in self.intervenable}
        reward = -((values[:, self._outcome_idx] - self.target) ** 2)
        variables = {name: values[:, j] for j, name in enumerate(self.scm.variables)}
        if self.action_type == "additive":
            variables[ACTION] = actions
            self.last_action[rows_index] = actions
        else:
            self.last_action[rows_index] = 0.0
            self.last_code[rows_index] = actions
        self.last_values[rows_index] = values
        self.last_reward[rows_index] = reward
        self.t[rows_index] += 1
        self._draw_contexts(rows)
        info = {"variables": variables, "intervention": intervention}
        return reward, np.zeros(count, dtype=bool), info

    def _observations(self) -> np.ndarray:
        return self.observed.astype(np.float32)

    # ------------------------------------------------------------------ rendering
    def _painter_state(self, painter: gym.Env, i: int) -> None:
        painter._noise, painter._hidden = self.noise[i : i + 1].copy(), self.hidden[i : i + 1].copy()
        painter._observed, painter._t = self.observed[i].copy(), int(self.t[i])
        if np.isnan(self.last_reward[i]):
            painter._last = None
            return
        variables = {name: float(v) for name, v in zip(self.scm.variables, self.last_values[i], strict=True)}
        intervention: dict[str, float] = {}
        if self.action_type == "additive":
            variables[ACTION] = float(self.last_action[i])
        elif self.last_code[i] > 0:
            variable, level = divmod(int(self.last_code[i]) - 1, len(self.levels))
            intervention = {self.intervenable[variable]: self.levels[level]}
        painter._last = {
            "variables": variables,
            "intervention": intervention,
            "reward": float(self.last_reward[i]),
        }
