"""A vectorized linear-Gaussian structural causal model with an exogenous action input.

Every variable is a weighted sum of its parents, of an optional exogenous action ``a`` and of an
optional hidden confounder ``U ~ N(0, 1)``, plus independent Gaussian noise::

    X_j = sum_i W[i, j] X_i + b[j] a + c[j] U + s[j] e_j,      e_j ~ N(0, 1)

Because the model is linear, a whole data set is one matrix product: with the variables in
topological order ``W`` is strictly upper triangular and ``X = (s * E + a b + U c) (I - W)^-1``.
A hard intervention ``do(X_j := v)`` cuts every incoming edge of ``X_j`` (column ``j`` of ``W``,
``b`` and ``c`` and the noise ``s[j]`` are zeroed) and feeds ``v`` instead. The same algebra gives
the exact interventional (and conditional) means and covariances, so learned or sampled quantities
can be checked against the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from gym_advrl.envs.causal._graph import ACTION, reachability, topological_order
from gym_advrl.utils.validation import check_float, check_int

# The notebooks' graph: X1 = e1; X2 = .7 X1 + .5 a + e2; X3 = .8 X2 + .3 X1 + e3.
SEED_PARENTS: dict[str, dict[str, float]] = {
    "X1": {},
    "X2": {"X1": 0.7, ACTION: 0.5},
    "X3": {"X2": 0.8, "X1": 0.3},
}
SEED_NOISE_STD: dict[str, float] = {"X1": 0.5, "X2": 0.3, "X3": 0.4}

#: Largest magnitude of an edge weight, of a confounder weight and of a noise standard deviation.
MAX_WEIGHT = 1e3

Interventions = Mapping[str, float | np.ndarray] | None


class LinearGaussianSCM:
    """A linear-Gaussian SCM over named variables, with an exogenous action and a hidden confounder.

    Args:
        parents: ``{child: {parent: weight}}`` for every variable (roots map to ``{}``). A parent
            named ``"a"`` is the exogenous action input. Must describe a DAG.
        noise_std: standard deviation of each variable's own noise: one number for all, or a
            mapping with an entry for every variable (all > 0).
        confounders: ``{variable: weight}`` of a hidden ``U ~ N(0, 1)``, or ``None`` for none.

    Attributes:
        variables: variable names in topological order (columns of every array returned).
        weights: ``(d, d)`` edge weights, ``weights[i, j]`` the coefficient of ``X_i`` in ``X_j``.
        action_weights: ``(d,)`` coefficients of the action.
        confounder_weights: ``(d,)`` coefficients of the hidden confounder (zeros if none).
        noise_std: ``(d,)`` noise standard deviations.

    Raises:
        ValueError: on a cycle, an unknown variable, a weight (edge or confounder) outside
            ``[-1000, 1000]`` or a noise standard deviation outside ``(0, 1000]``.
    """

    def __init__(
        self,
        parents: Mapping[str, Mapping[str, float]],
        noise_std: float | Mapping[str, float] = 1.0,
        confounders: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(parents, Mapping) or not parents:
            raise ValueError(
                f"graph must be a non-empty mapping {{child: {{parent: weight}}}}, got {parents!r}"
            )
        names = list(parents)
        for name in names:
            if not isinstance(name, str) or not name or name == ACTION:
                raise ValueError(
                    f"graph variable names must be non-empty strings other than {ACTION!r}, got {name!r}"
                )
        edges: dict[str, dict[str, float]] = {}
        for child, child_parents in parents.items():
            if not isinstance(child_parents, Mapping):
                raise ValueError(
                    f"graph[{child!r}] must be a mapping {{parent: weight}}, got {child_parents!r}"
                )
            for parent, weight in child_parents.items():
                if parent != ACTION and parent not in parents:
                    raise ValueError(
                        f"graph: unknown variable {parent!r} (parent of {child!r}); variables are {tuple(names)} and the action {ACTION!r}"
                    )
                check_float(f"graph[{child!r}][{parent!r}]", weight, -MAX_WEIGHT, MAX_WEIGHT)
            edges[child] = {p: float(w) for p, w in child_parents.items()}
        self.variables: tuple[str, ...] = topological_order(names, edges)
        index = {name: i for i, name in enumerate(self.variables)}
        d = len(self.variables)
        self.weights = np.zeros((d, d))
        self.action_weights = np.zeros(d)
        for child, child_parents in edges.items():
            for parent, weight in child_parents.items():
                if parent == ACTION:
                    self.action_weights[index[child]] = weight
                else:
                    self.weights[index[parent], index[child]] = weight
        self.noise_std = self._per_variable("noise_std", noise_std, positive=True)
        self.confounder_weights = np.zeros(d)
        if confounders is not None:
            self.confounder_weights = self._per_variable(
                "confounders", confounders, positive=False, partial=True
            )
        self._index = index
        self._confounded = bool(np.any(self.confounder_weights != 0.0))
        self._parents = [np.flatnonzero(self.weights[:, j]) for j in range(d)]
        self._propagators: dict[frozenset[int], np.ndarray] = {}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def seed_graph(cls, confounded: bool = False, confounder_strength: float = 0.5) -> LinearGaussianSCM:
        """The notebooks' three-variable graph; ``confounded`` adds a hidden ``U -> X2, X3``."""
        strength = check_float("confounder_strength", confounder_strength, 0.0, MAX_WEIGHT)
        confounders = {"X2": strength, "X3": strength} if confounded else None
        return cls(SEED_PARENTS, SEED_NOISE_STD, confounders)

    @classmethod
    def random_dag(
        cls,
        n_vars: int = 6,
        edge_prob: float = 0.3,
        seed: int = 0,
        confounded: bool = False,
        confounder_strength: float = 0.5,
    ) -> LinearGaussianSCM:
        """A seeded random DAG ``X1 .. Xn`` (names in topological order).

        Each forward pair ``Xi -> Xj`` (``i < j``) is an edge with probability ``edge_prob``, with a
        weight of random sign and magnitude uniform in ``[0.5, 1]``; noise standard deviations are
        uniform in ``[0.3, 0.6]``. The action enters one variable among ``X2 .. X(n-1)`` (weight uniform
        in ``[0.5, 1]``), which is made an ancestor of ``Xn`` if it is not one already, so ``X1`` is
        always observed before acting and ``Xn`` always responds to the action. ``confounded`` adds a
        hidden ``U`` into the action's target and ``Xn``.
        """
        n_vars = check_int("n_vars", n_vars, 3, 50)
        edge_prob = check_float("edge_prob", edge_prob, 0.0, 1.0)
        seed = check_int("seed", seed, 0)
        strength = check_float("confounder_strength", confounder_strength, 0.0, MAX_WEIGHT)
        rng = np.random.default_rng(seed)
        names = [f"X{i + 1}" for i in range(n_vars)]
        upper = np.triu(rng.random((n_vars, n_vars)) < edge_prob, k=1)
        magnitude = rng.uniform(0.5, 1.0, size=(n_vars, n_vars))
        sign = rng.choice([-1.0, 1.0], size=(n_vars, n_vars))
        target = int(rng.integers(1, n_vars - 1))
        if not reachability(upper)[target, n_vars - 1]:
            upper[target, n_vars - 1] = True
        parents: dict[str, dict[str, float]] = {
            names[j]: {names[i]: float(sign[i, j] * magnitude[i, j]) for i in range(j) if upper[i, j]}
            for j in range(n_vars)
        }
        parents[names[target]][ACTION] = float(rng.uniform(0.5, 1.0))
        noise = {
            name: float(std) for name, std in zip(names, rng.uniform(0.3, 0.6, size=n_vars), strict=True)
        }
        confounders = {names[target]: strength, names[-1]: strength} if confounded else None
        return cls(parents, noise, confounders)

    # ------------------------------------------------------------------ structure
    def magnitude_bound(self, intervention_bound: float = 0.0) -> np.ndarray:
        """``(d,)`` bound on ``|X_j|`` per unit of exogenous magnitude, under any interventions.

        With every standard-normal noise and the hidden confounder at most ``E`` in magnitude,
        ``|a| <= 1`` and ``do`` values at most ``intervention_bound``,
        ``|X_j| <= E * bound[j]`` (for ``E >= 1``). Computed from the sums over directed paths
        of the products of absolute weights, ``(I - |W|)^-1``, which bound every propagator
        whatever edges an intervention cuts.
        """
        gains = self._propagator_of(np.abs(self.weights))
        inputs = self.noise_std + np.abs(self.action_weights) + np.abs(self.confounder_weights)
        return inputs @ gains + intervention_bound * gains.max(axis=0)

    @property
    def n_vars(self) -> int:
        return len(self.variables)

    @property
    def confounded(self) -> bool:
        """Whether a hidden confounder enters at least one variable."""
        return self._confounded

    @property
    def adjacency(self) -> np.ndarray:
        """``(d, d)`` 0/1 int matrix, ``adjacency[i, j] = 1`` iff ``X_i -> X_j``."""
        return (self.weights != 0.0).astype(int)

    @property
    def augmented_adjacency(self) -> np.ndarray:
        """Adjacency over ``("a",) + variables``: the action is node 0 (an exogenous source)."""
        d = self.n_vars
        out = np.zeros((d + 1, d + 1), dtype=int)
        out[0, 1:] = self.action_weights != 0.0
        out[1:, 1:] = self.adjacency
        return out

    def index(self, name: str) -> int:
        """Column of variable ``name`` in the arrays returned by :meth:`sample`."""
        if name not in self._index:
            raise ValueError(f"unknown variable {name!r}; variables are {self.variables}")
        return self._index[name]

    def descendants(self, name: str) -> tuple[str, ...]:
        """Variables reachable from ``name`` (a variable or ``"a"``) by a directed path, in order."""
        reach = reachability(self.adjacency != 0)
        if name == ACTION:
            children = self.action_weights != 0.0
            hit = children | np.any(reach[children], axis=0)
        else:
            hit = reach[self.index(name)]
        return tuple(v for v, h in zip(self.variables, hit, strict=True) if h)

    # ------------------------------------------------------------------ sampling
    def sample_noise(
        self, n: int, rng: np.random.Generator | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Standard-normal exogenous noise ``(n, d)`` and hidden confounder ``(n,)`` (zeros if none)."""
        rng = np.random.default_rng(rng)
        noise = rng.standard_normal((self.n_vars, n)).T  # column-major: one contiguous vector per variable
        hidden = rng.standard_normal(n) if self.confounded else np.zeros(n)
        return noise, hidden

    def realize(
        self,
        noise: np.ndarray,
        hidden: np.ndarray | None = None,
        action: float | np.ndarray = 0.0,
        interventions: Interventions = None,
    ) -> np.ndarray:
        """Solve the structural equations for given exogenous values.

        Args:
            noise: ``(n, d)`` standard-normal noise (scaled here by ``noise_std``).
            hidden: ``(n,)`` values of the hidden confounder, or ``None`` for zeros.
            action: the action ``a``, a number or an ``(n,)`` array.
            interventions: ``{variable: value}`` hard interventions ``do(X := value)``; a value is a
                number or an ``(n,)`` array.

        Returns:
            ``(n, d)`` values of every variable, columns in :attr:`variables` order.
        """
        noise = np.asarray(noise, dtype=np.float64)
        if noise.ndim != 2 or noise.shape[1] != self.n_vars:
            raise ValueError(f"noise must have shape (n, {self.n_vars}), got {noise.shape}")
        n = noise.shape[0]
        intervened = self._parse_interventions(interventions, n)
        action = _as_samples("action", action, n)
        if hidden is not None and self._confounded:
            hidden = _as_samples("hidden", hidden, n)
        # The structural equations in topological order, each vectorized over the n samples; the
        # output is column-major so that every variable is one contiguous vector.
        out = np.empty((n, self.n_vars), order="F")
        for j in range(self.n_vars):
            column = out[:, j]
            if j in intervened:
                column[:] = intervened[j]
                continue
            np.multiply(noise[:, j], self.noise_std[j], out=column)
            for i in self._parents[j]:
                column += self.weights[i, j] * out[:, i]
            if self.action_weights[j] != 0.0:
                column += self.action_weights[j] * action
            if hidden is not None and self.confounder_weights[j] != 0.0:
                column += self.confounder_weights[j] * hidden
        return out

    def sample(
        self,
        n: int,
        interventions: Interventions = None,
        action: float | np.ndarray = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> np.ndarray:
        """Draw ``n`` i.i.d. samples, observational or under ``do`` interventions.

        Args:
            n: number of samples.
            interventions: ``{variable: value}`` hard interventions (number or ``(n,)`` array each).
            action: the action ``a``, a number or an ``(n,)`` array (e.g. a random policy's actions).
            rng: a ``numpy.random.Generator``, a seed, or ``None`` for fresh entropy.

        Returns:
            ``(n, d)`` float64 array of every observed variable in :attr:`variables` order (the
            hidden confounder is not returned).
        """
        n = check_int("n", n, 1)
        noise, hidden = self.sample_noise(n, rng)
        return self.realize(noise, hidden, action, interventions)

    # ------------------------------------------------------------------ analytic moments
    def interventional_mean(
        self,
        interventions: Interventions = None,
        action: float | np.ndarray = 0.0,
        given: Mapping[str, float | np.ndarray] | None = None,
    ) -> np.ndarray:
        """Exact ``E[X | do(interventions), a, X_S = x_S]`` for every variable.

        Args:
            interventions: ``{variable: value}`` hard interventions (numbers or arrays).
            action: the action ``a`` (number or array).
            given: ``{variable: value}`` observed values to condition on (numbers or arrays), e.g.
                the observed root ``X1``; the Gaussian conditional is exact.

        Returns:
            ``(..., d)`` means, the leading shape broadcast from the array arguments.
        """
        intervened = self._parse_interventions(interventions, None)
        cut = frozenset(intervened)
        propagator = self._propagator(cut)
        keep = np.ones(self.n_vars)
        keep[list(cut)] = 0.0
        action = np.asarray(_as_samples("action", action, None))
        mean = action[..., None] * ((keep * self.action_weights) @ propagator)
        for j, value in intervened.items():
            mean = mean + np.asarray(value)[..., None] * propagator[j]
        if not given:
            return mean
        observed, x_obs = self._parse_given(given, cut)
        cov = self._covariance(cut, propagator)
        gain = np.linalg.solve(cov[np.ix_(observed, observed)], cov[observed]).T  # (d, k)
        return mean + (x_obs - mean[..., observed]) @ gain.T

    def interventional_covariance(
        self, interventions: Interventions = None, given: Iterable[str] | None = None
    ) -> np.ndarray:
        """Exact ``Cov[X | do(interventions), a, X_S]`` (``(d, d)``; independent of the values)."""
        cut = frozenset(self._parse_interventions(interventions, None))
        propagator = self._propagator(cut)
        cov = self._covariance(cut, propagator)
        if not given:
            return cov
        observed, _ = self._parse_given({name: 0.0 for name in given}, cut)
        gain = np.linalg.solve(cov[np.ix_(observed, observed)], cov[observed])
        return cov - cov[:, observed] @ gain

    # ------------------------------------------------------------------ internals
    def _covariance(self, cut: frozenset[int], propagator: np.ndarray) -> np.ndarray:
        keep = np.ones(self.n_vars)
        keep[list(cut)] = 0.0
        scaled = (keep * self.noise_std)[:, None] * propagator
        through_u = (keep * self.confounder_weights) @ propagator
        return scaled.T @ scaled + np.outer(through_u, through_u)

    def _propagator(self, cut: frozenset[int]) -> np.ndarray:
        """``(I - W_cut)^-1`` as the finite series ``I + W + ... + W^(d-1)`` (W is nilpotent)."""
        if cut not in self._propagators:
            w = self.weights.copy()
            w[:, list(cut)] = 0.0
            self._propagators[cut] = self._propagator_of(w)
        return self._propagators[cut]

    def _propagator_of(self, w: np.ndarray) -> np.ndarray:
        total = np.eye(self.n_vars)
        term = np.eye(self.n_vars)
        for _ in range(self.n_vars - 1):
            term = term @ w
            total += term
        return total

    def _parse_interventions(self, interventions: Interventions, n: int | None) -> dict[int, np.ndarray]:
        """``{column: value}`` of validated hard interventions (values numbers or ``(n,)`` arrays)."""
        if not interventions:
            return {}
        if not isinstance(interventions, Mapping):
            raise ValueError(f"interventions must be a mapping {{variable: value}}, got {interventions!r}")
        unknown = [name for name in interventions if name not in self._index]
        if unknown:
            raise ValueError(
                f"interventions: unknown variable(s) {unknown}; intervenable variables are {self.variables}"
            )
        return {
            self._index[name]: _as_samples(f"interventions[{name!r}]", value, n)
            for name, value in interventions.items()
        }

    def _parse_given(self, given: Mapping[str, Any], cut: frozenset[int]) -> tuple[list[int], np.ndarray]:
        observed = []
        for name in given:
            if name not in self._index:
                raise ValueError(f"given: unknown variable {name!r}; variables are {self.variables}")
            if self._index[name] in cut:
                raise ValueError(
                    f"given: {name!r} is intervened on; condition only on non-intervened variables"
                )
            observed.append(self._index[name])
        columns = [_as_samples(f"given[{name!r}]", value, None) for name, value in given.items()]
        return observed, np.stack(np.broadcast_arrays(*columns), axis=-1)

    def _per_variable(self, name: str, value: Any, positive: bool, partial: bool = False) -> np.ndarray:
        low_inclusive = not positive
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(self.variables))
            if unknown:
                raise ValueError(f"{name}: unknown variable(s) {unknown}; variables are {self.variables}")
            missing = [v for v in self.variables if v not in value]
            if missing and not partial:
                raise ValueError(f"{name} needs a value for every variable; missing {missing}")
            low = 0.0 if positive else -MAX_WEIGHT
            return np.array(
                [
                    check_float(
                        f"{name}[{v!r}]", value.get(v, 0.0), low, MAX_WEIGHT, low_inclusive=low_inclusive
                    )
                    for v in self.variables
                ]
            )
        low = 0.0 if positive else -MAX_WEIGHT
        return np.full(self.n_vars, check_float(name, value, low, MAX_WEIGHT, low_inclusive=low_inclusive))

    def __repr__(self) -> str:
        terms = []
        for j, child in enumerate(self.variables):
            parts = [
                f"{self.weights[i, j]:+.3g} {self.variables[i]}"
                for i in range(self.n_vars)
                if self.weights[i, j]
            ]
            if self.action_weights[j]:
                parts.append(f"{self.action_weights[j]:+.3g} {ACTION}")
            if self.confounder_weights[j]:
                parts.append(f"{self.confounder_weights[j]:+.3g} U")
            parts.append(f"+{self.noise_std[j]:.3g} e_{child}")
            terms.append(f"{child} = {' '.join(parts)}")
        return f"LinearGaussianSCM({'; '.join(terms)})"


def _as_samples(name: str, value: Any, n: int | None) -> np.ndarray | float:
    """A number, or (when ``n`` is given) an ``(n,)`` array; finite values only."""
    if type(value) is float:  # the per-step path of the env: skip numpy for a scalar
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return value
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # not numbers, ragged, or an int beyond the float range
        raise ValueError(
            f"{name} must be a finite number or an array of finite numbers, got {value!r}"
        ) from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    if n is not None and arr.shape not in ((), (n,)):
        raise ValueError(f"{name} must be a number or an array of shape ({n},), got shape {arr.shape}")
    return arr
