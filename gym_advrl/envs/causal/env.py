"""``AdvRL/CausalSCM-v0``: act on a structural causal model, additively or by ``do`` interventions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.envs.causal._drawing import arrow, layered_layout, value_color
from gym_advrl.envs.causal.scm import ACTION, MAX_WEIGHT, LinearGaussianSCM
from gym_advrl.utils.canvas import Canvas
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import (
    as_batch,
    box_action,
    check_choice,
    check_float,
    check_int,
    check_options,
    discrete_action,
    reject_unknown_kwargs,
)

#: Largest number of variables (random or mapping graph).
MAX_VARIABLES = 50
#: Largest magnitude of ``target`` and of a ``do`` level.
MAX_VALUE = 1e6
#: Largest bound on a variable's magnitude per unit of noise (``LinearGaussianSCM.magnitude_bound``):
#: keeps every observation finite in float32 and every squared error finite in float64.
MAX_MAGNITUDE = 1e30
#: Largest side of a rendered frame in pixels (large graphs are drawn smaller).
MAX_FRAME_SIDE = 1600


class CausalSCMEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    An episodic structural causal model. By default it is the three-variable linear-Gaussian graph
    of the course notebooks, with an exogenous action ``a``::

        X1 = e1                      e1 ~ N(0, 0.5^2)
        X2 = 0.7 X1 + 0.5 a + e2     e2 ~ N(0, 0.3^2)
        X3 = 0.8 X2 + 0.3 X1 + e3    e3 ~ N(0, 0.4^2)

    Each step is one draw of the model: fresh noise is sampled, the variables that do not depend
    on the action (here ``X1``) are observed, the agent acts, and the rest is realized. The aim is
    to drive the outcome (``X3``) to ``target``. So ``E[X3 | X1, a] = 0.86 X1 + 0.4 a`` and the
    optimal additive action is ``clip((target - 0.86 X1) / 0.4, -1, 1)``; ``expected_reward`` and
    ``optimal_action`` compute such quantities exactly for any graph.

    With ``confounded=True`` a hidden ``U ~ N(0, 1)`` enters the action's target and the outcome
    (``X2`` and ``X3``) with weight ``confounder_strength``: observational regressions of ``X3`` on
    ``X2`` are then biased (no observed adjustment set exists), interventions are not.
    ``graph="random"`` uses a seeded random DAG (see ``LinearGaussianSCM.random_dag``) and a mapping
    ``{child: {parent: weight}}`` (``"a"`` for the action) defines any other linear-Gaussian graph.
    ``env.unwrapped.scm`` exposes the true model: ``adjacency``, ``sample(n, interventions)``,
    exact interventional means and covariances.

    ## Action Space

    * ``action_type="additive"`` (default): ``Box(-1, 1, (1,), float32)``, the value of ``a``.
      Finite values outside the box are clipped; NaN or inf raise ``ValueError``.
    * ``action_type="do"``: ``Discrete(1 + len(intervenable) * len(levels))``. ``0`` is a no-op;
      ``1 + i * len(levels) + k`` performs ``do(intervenable[i] := levels[k])`` (the intervened
      variable's incoming edges and noise are cut). ``a`` is then absent (zero).

    ## Observation Space

    ``Box(-inf, inf, (k,), float32)``: the values of the ``k`` variables that are not descendants of
    the action, in topological order (``env.unwrapped.observed_variables``; ``("X1",)`` by default).

    ## Rewards

    ``-(X_outcome - target)^2`` with the realized outcome variable (``X3`` by default).

    ## Starting State

    Every step draws fresh, independent noise; there is no other state.

    ## Episode End

    Never terminated; truncated after 50 steps when made with ``gym.make("AdvRL/CausalSCM-v0")``.
    ``info["variables"]`` holds the realized value of every variable (and ``"a"`` for additive
    actions) and ``info["intervention"]`` the ``do`` applied (``{}`` for none).

    ## Arguments

    | Argument              | Default           | Meaning                                                     |
    |-----------------------|-------------------|-------------------------------------------------------------|
    | `action_type`         | `"additive"`      | `"additive"` (continuous ``a``) or `"do"` (interventions)   |
    | `graph`               | `"seed"`          | `"seed"`, `"random"` or a mapping `{child: {parent: w}}` of at most 50 variables, weights in [-1000, 1000] |
    | `n_vars`              | 6                 | variables of a random graph (3..50)                         |
    | `edge_prob`           | 0.3               | edge probability of a random graph, in [0, 1]               |
    | `graph_seed`          | 0                 | seed of the random graph, an integer >= 0 (the graph is fixed per env) |
    | `noise_std`           | None              | noise std (number or mapping) for a mapping graph (default 1), in (0, 1000] |
    | `confounded`          | False             | add a hidden confounder of the action target and outcome    |
    | `confounder_strength` | 0.5               | weight of the hidden confounder, in [0, 1000]               |
    | `outcome`             | None              | rewarded variable (default: last descendant of the action)  |
    | `target`              | 1.0               | desired value of the outcome, in [-1e6, 1e6]                |
    | `intervenable`        | None              | `do` targets (default: descendants of `a` but the outcome)  |
    | `levels`              | (-1, 0, 1)        | values a `do` action may set, each in [-1e6, 1e6]           |
    | `render_mode`         | None              | `"rgb_array"`, `"ansi"` or `"human"` (pygame)               |

    ``n_vars``, ``edge_prob`` and ``graph_seed`` are checked whatever ``graph`` is. Weights
    compound along paths, so the model as a whole is checked too: the bound
    ``LinearGaussianSCM.magnitude_bound(max |level|)`` on every variable's magnitude per unit of
    noise must be at most ``1e30``, which keeps every observation finite in float32 and every
    reward finite. Invalid values (and unknown arguments) raise ``ValueError`` naming the
    argument. Frames are at most 1600 pixels wide or high (large graphs are drawn smaller) and
    each costs in proportion to what is drawn (about 0.1 s for 50 variables).
    ``get_state()`` / ``set_state(state)`` snapshot and restore a running episode exactly.

    ## Version History

    * v0: initial version. Later within v0: the ranges above, random-graph arguments always
      checked, faster and bounded frames, snapshots.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}
    _snapshot_attrs = ("_noise", "_hidden", "_observed", "_last", "_t")

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        action_type: str = "additive",
        graph: str | Mapping[str, Mapping[str, float]] = "seed",
        n_vars: int = 6,
        edge_prob: float = 0.3,
        graph_seed: int = 0,
        noise_std: float | Mapping[str, float] | None = None,
        confounded: bool = False,
        confounder_strength: float = 0.5,
        outcome: str | None = None,
        target: float = 1.0,
        intervenable: Sequence[str] | None = None,
        levels: Sequence[float] = (-1.0, 0.0, 1.0),
    ) -> None:
        self._init_render(render_mode)
        self.action_type = check_choice("action_type", action_type, ("additive", "do"))
        check_choice("confounded", confounded, (False, True))
        self.target = check_float("target", target, -MAX_VALUE, MAX_VALUE)
        self.scm = _build_scm(
            graph, n_vars, edge_prob, graph_seed, noise_std, bool(confounded), confounder_strength
        )
        scm = self.scm

        affected = scm.descendants(ACTION)
        if not affected:
            raise ValueError(f"graph: the action {ACTION!r} must be a parent of at least one variable")
        self.observed_variables = tuple(v for v in scm.variables if v not in affected)
        if not self.observed_variables:
            raise ValueError(
                "graph: at least one variable must not depend on the action (it is observed before acting)"
            )
        self.outcome = affected[-1] if outcome is None else check_choice("outcome", outcome, affected)
        if intervenable is None:
            intervenable = tuple(v for v in affected if v != self.outcome) or (self.outcome,)
        if isinstance(intervenable, str) or not isinstance(intervenable, Sequence) or not intervenable:
            raise ValueError(
                f"intervenable must be a non-empty sequence of variables from {affected}, got {intervenable!r}"
            )
        self.intervenable = tuple(check_choice("intervenable", v, affected) for v in intervenable)
        if len(set(self.intervenable)) != len(self.intervenable):
            raise ValueError(f"intervenable must not repeat a variable, got {intervenable!r}")
        self.levels = _check_levels(levels)
        magnitude = float(np.max(scm.magnitude_bound(max(abs(level) for level in self.levels))))
        if not magnitude <= MAX_MAGNITUDE:
            raise ValueError(
                f"graph: with these edge weights, noise_std, confounder_strength and levels a variable could reach "
                f"{magnitude:.3g} times the noise scale (weights compound along paths); the limit is {MAX_MAGNITUDE:g}"
            )

        self._observed_idx = [scm.index(v) for v in self.observed_variables]
        self._outcome_idx = scm.index(self.outcome)
        if self.action_type == "additive":
            self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(1 + len(self.intervenable) * len(self.levels))
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(len(self.observed_variables),), dtype=np.float32
        )

        self._noise: np.ndarray | None = None
        self._hidden: np.ndarray | None = None
        self._observed: np.ndarray | None = None
        self._last: dict[str, Any] | None = None
        self._t = 0
        self._layout = layered_layout(scm, self.action_type == "additive")

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        check_options(options, ())
        self._t = 0
        self._last = None
        obs = self._draw_context()
        self._render_human_step()
        return obs, {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._noise is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        a, interventions = self._decode(action)
        values = self.scm.realize(self._noise, self._hidden, a, interventions)[0]
        reward = -float((values[self._outcome_idx] - self.target) ** 2)
        variables = {name: float(v) for name, v in zip(self.scm.variables, values, strict=True)}
        if self.action_type == "additive":
            variables[ACTION] = a
        info = {"variables": variables, "intervention": interventions}
        self._last = {**info, "reward": reward}
        self._t += 1
        obs = self._draw_context()
        self._render_human_step()
        return obs, reward, False, False, info

    # ------------------------------------------------------------------ analytic quantities
    def expected_reward(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Exact ``E[reward | obs, action]`` (batched over leading dims).

        ``obs`` has shape ``(..., k)``; ``action`` ``(..., 1)`` (additive) or ``(...)`` integers (do).
        Equals ``-((E[Y | obs, action] - target)^2 + Var[Y | obs, action])`` for the outcome ``Y``.
        """
        obs = as_batch("obs", obs, len(self.observed_variables))
        given = {v: obs[..., i] for i, v in enumerate(self.observed_variables)}
        if self.action_type == "additive":
            a = np.clip(np.asarray(action, dtype=np.float64)[..., 0], -1.0, 1.0)
            return self._expected_reward(None, a, given)
        codes = np.asarray(action)
        result = np.zeros(np.broadcast_shapes(codes.shape, obs.shape[:-1]))
        for code in np.unique(codes):
            _, interventions = self._decode(int(code))
            value = self._expected_reward(interventions, 0.0, given)
            result = np.where(codes == code, value, result)
        return result

    def optimal_action(self, obs: np.ndarray) -> np.ndarray:
        """The action maximizing :meth:`expected_reward` for each ``obs (..., k)``.

        Additive: ``E[Y | obs, a] = m + g a`` is linear in ``a``, so ``a* = clip((target - m) / g,
        -1, 1)``, shape ``(..., 1)``. Do: the best of the finite action set, shape ``(...)``.
        """
        obs = np.asarray(obs, dtype=np.float64)
        if self.action_type == "additive":
            given = {v: obs[..., i] for i, v in enumerate(self.observed_variables)}
            m = self.scm.interventional_mean(None, 0.0, given)[..., self._outcome_idx]
            gain = self.scm.interventional_mean(None, 1.0, given)[..., self._outcome_idx] - m
            return np.clip((self.target - m) / gain, -1.0, 1.0)[..., None]
        values = np.stack(
            [self.expected_reward(obs, np.full(obs.shape[:-1], k)) for k in range(self.action_space.n)]
        )
        return np.argmax(values, axis=0)

    def _expected_reward(self, interventions: dict | None, a: Any, given: dict) -> np.ndarray:
        mean = self.scm.interventional_mean(interventions, a, given)[..., self._outcome_idx]
        var = self.scm.interventional_covariance(interventions, given)[self._outcome_idx, self._outcome_idx]
        return -((mean - self.target) ** 2 + var)

    # ------------------------------------------------------------------ internals
    def _draw_context(self) -> np.ndarray:
        """Fresh exogenous noise for the next step; reveal the action's non-descendants."""
        self._noise, self._hidden = self.scm.sample_noise(1, self.np_random)
        self._observed = self.scm.realize(self._noise, self._hidden)[0, self._observed_idx]
        return self._observed.astype(np.float32)

    def _decode(self, action: Any) -> tuple[float, dict[str, float]]:
        if self.action_type == "additive":
            return float(box_action(action, self.action_space)[0]), {}
        code = discrete_action(action, self.action_space)
        if code == 0:
            return 0.0, {}
        variable, level = divmod(code - 1, len(self.levels))
        return 0.0, {self.intervenable[variable]: self.levels[level]}

    # ------------------------------------------------------------------ rendering
    def _render_ready(self) -> bool:
        return self._noise is not None

    def _ansi(self) -> str:
        lines = [f"t={self._t}  outcome {self.outcome} -> target {self.target:+.3f}"]
        observed = "  ".join(
            f"{v}={x:+.3f}" for v, x in zip(self.observed_variables, self._observed, strict=True)
        )
        lines.append(f"observed now: {observed}")
        if self._last is not None:
            intervention = (
                "  ".join(f"do({v}:={x:+g})" for v, x in self._last["intervention"].items())
                or "no intervention"
            )
            values = "  ".join(f"{v}={x:+.3f}" for v, x in self._last["variables"].items())
            lines.append(f"last step: {values}  [{intervention}]  reward={self._last['reward']:+.3f}")
        return "\n".join(lines)

    def _draw(self) -> np.ndarray:
        """The causal graph: node colour = last realized value (red > 0 > blue), target ring green."""
        positions, (x_max, y_max) = self._layout
        y_top = y_max + (1.0 if "U" in positions else 0.6)
        # Pixels per world unit on both axes (so nodes stay round); large graphs are drawn smaller.
        px = min(110.0, MAX_FRAME_SIDE / (x_max + 1.4), MAX_FRAME_SIDE / (y_top + 0.9))
        canvas = Canvas(
            round(px * (x_max + 1.4)), round(px * (y_top + 0.9)), (-0.7, x_max + 0.7), (-0.9, y_top)
        )
        last = self._last
        cut = set(last["intervention"]) if last else set()
        parents = (
            [(ACTION, j) for j in np.flatnonzero(self.scm.action_weights)]
            if self.action_type == "additive"
            else []
        )
        parents += [(self.scm.variables[i], j) for i, j in zip(*np.nonzero(self.scm.weights), strict=True)]
        parents += [("U", j) for j in np.flatnonzero(self.scm.confounder_weights)]
        for source, j in parents:
            child = self.scm.variables[j]
            color = (215, 215, 215) if child in cut else ((170, 120, 200) if source == "U" else (90, 90, 90))
            arrow(canvas, positions[source], positions[child], color)
        for name, (x, y) in positions.items():
            if name == ACTION and self.action_type != "additive":
                continue
            if name == "U":
                canvas.fill_circle(x, y, 0.2, (200, 185, 220))
                continue
            if name == ACTION:
                value = last["variables"][ACTION] if last else None
                canvas.fill_rect(x - 0.22, y - 0.22, x + 0.22, y + 0.22, (40, 40, 40))
                canvas.fill_rect(x - 0.17, y - 0.17, x + 0.17, y + 0.17, value_color(value))
                continue
            if name in self.observed_variables:
                value = float(self._observed[self.observed_variables.index(name)])
            else:
                value = last["variables"][name] if last else None
            ring = (0, 150, 0) if name == self.outcome else ((0, 0, 0) if name in cut else (60, 60, 60))
            canvas.fill_circle(x, y, 0.26 if name in cut or name == self.outcome else 0.23, ring)
            canvas.fill_circle(x, y, 0.19, value_color(value))
        # Outcome strip: target (green) and the last realized outcome (red) on [-3, 3].
        canvas.fill_rect(0.0, -0.62, x_max, -0.58, (120, 120, 120))
        scale = x_max / 6.0
        canvas.fill_rect(
            (self.target + 3.0) * scale - 0.03, -0.75, (self.target + 3.0) * scale + 0.03, -0.45, (0, 150, 0)
        )
        if last is not None:
            y_value = float(np.clip(last["variables"][self.outcome], -3.0, 3.0))
            canvas.fill_circle((y_value + 3.0) * scale, -0.6, 0.08, (200, 40, 40))
        return canvas.image


def _build_scm(
    graph: Any,
    n_vars: int,
    edge_prob: float,
    graph_seed: int,
    noise_std: Any,
    confounded: bool,
    strength: float,
) -> LinearGaussianSCM:
    # Checked whatever the graph, so that a mistake is never silently ignored.
    n_vars = check_int("n_vars", n_vars, 3, MAX_VARIABLES)
    edge_prob = check_float("edge_prob", edge_prob, 0.0, 1.0)
    graph_seed = check_int("graph_seed", graph_seed, 0)
    strength = check_float("confounder_strength", strength, 0.0, MAX_WEIGHT)
    if isinstance(graph, str):
        check_choice("graph", graph, ("seed", "random"))
        if noise_std is not None:
            raise ValueError(f'noise_std applies to a mapping graph only; graph="{graph}" has its own noise')
        if graph == "seed":
            return LinearGaussianSCM.seed_graph(confounded, strength)
        return LinearGaussianSCM.random_dag(n_vars, edge_prob, graph_seed, confounded, strength)
    if not isinstance(graph, Mapping):
        raise ValueError(
            f'graph must be "seed", "random" or a mapping {{child: {{parent: weight}}}}, got {graph!r}'
        )
    if len(graph) > MAX_VARIABLES:
        raise ValueError(f"graph may have at most {MAX_VARIABLES} variables, got {len(graph)}")
    scm = LinearGaussianSCM(graph, 1.0 if noise_std is None else noise_std)
    affected = scm.descendants(ACTION)
    if confounded and affected:  # without affected variables the env reports the missing action edge
        first_target = next(v for v in scm.variables if scm.action_weights[scm.index(v)] != 0.0)
        return LinearGaussianSCM(
            graph, 1.0 if noise_std is None else noise_std, {first_target: strength, affected[-1]: strength}
        )
    return scm


def _check_levels(levels: Any) -> tuple[float, ...]:
    if isinstance(levels, str) or not isinstance(levels, Sequence) or len(levels) == 0:
        raise ValueError(f"levels must be a non-empty sequence of finite numbers, got {levels!r}")
    checked = tuple(check_float("levels", level, -MAX_VALUE, MAX_VALUE) for level in levels)
    if len(set(checked)) != len(checked):
        raise ValueError(f"levels must be distinct, got {levels!r}")
    return checked
