"""Monte Carlo tree search (UCT, and PUCT with a prior from an SB3 model) over environment snapshots."""

from __future__ import annotations

import copy
import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces

from sb3_ext.common.validation import check_positive, check_positive_int, check_unit_interval


class _Node:
    """A node of the search tree: the state reached by its action path from the root."""

    __slots__ = ("children", "priors", "reward", "terminal", "value_sum", "visits")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.visits, self.value_sum = 0, 0.0
        self.priors: np.ndarray | None = None  # P(.|s) of the prior model, once the node is evaluated
        self.reward, self.terminal = 0.0, False  # of the step that led here

    def value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


class MCTS:
    """
    Monte Carlo tree search over exact snapshots of an environment (Kocsis & Szepesvari 2006;
    PUCT as in Silver et al. 2017).

    :meth:`predict` plans from the **current state of** ``env`` (the env the caller steps): every
    simulation restores a copy of the env to that state (the env's ``get_state`` / ``set_state``
    snapshot when it has one, every ``gym_advrl`` env does; else ``copy.deepcopy``), walks down the
    tree choosing actions by UCT, ``Q(s, a) + c_uct sqrt(ln N(s) / N(s, a))`` (untried actions
    first), expands one new node, estimates its value by a random rollout (or by ``prior_model``'s
    value), and backs the discounted return up the path. The action returned is the root's most
    visited. Transitions are simulated from the root's snapshot each time, random generator
    included, so stochastic envs are searched with the outcomes their generator would give.

    With ``prior_model`` (an SB3 model on the same observation space: PPO/A2C policies, or DQN),
    the selection is PUCT, ``Q(s, a) + c_puct P(a|s) sqrt(N(s)) / (1 + N(s, a))``, with ``P`` the
    model's action probabilities (a softmax of its Q-values for DQN), and leaves are valued by the
    model's value estimate (``max_a Q`` for DQN) instead of a rollout.

    :param env: the environment to plan in (``Discrete`` actions); it is never stepped by the search
    :param n_simulations: simulations per call of :meth:`predict`
    :param c_uct: exploration constant of UCT
    :param gamma: discount of the searched returns (below 1 it prefers shorter paths to a reward)
    :param max_depth: longest simulated path from the root (tree plus rollout)
    :param rollout_depth: random rollout steps from a new leaf (0: value 0, unless a prior model)
    :param prior_model: an SB3 model whose policy and value guide the search (PUCT)
    :param c_puct: exploration constant of PUCT
    :param seed: seed of the rollouts' and ties' random generator
    """

    def __init__(
        self,
        env: gym.Env,
        n_simulations: int = 100,
        c_uct: float = math.sqrt(2.0),
        gamma: float = 0.99,
        max_depth: int = 100,
        rollout_depth: int = 20,
        prior_model: Any = None,
        c_puct: float = 1.25,
        seed: int | None = None,
    ) -> None:
        if not isinstance(env, gym.Env):
            raise ValueError(f"env must be a gymnasium.Env, got {type(env).__name__}")
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"action_space: MCTS needs Discrete actions, got {env.action_space}")
        self.env = env
        self.n_simulations = check_positive_int("n_simulations", n_simulations)
        self.c_uct = check_positive("c_uct", c_uct)
        self.gamma = check_unit_interval("gamma", gamma)
        self.max_depth = check_positive_int("max_depth", max_depth)
        if isinstance(rollout_depth, bool) or not isinstance(rollout_depth, int) or rollout_depth < 0:
            raise ValueError(f"rollout_depth must be an integer >= 0, got {rollout_depth!r}")
        self.rollout_depth = rollout_depth
        if prior_model is not None and not hasattr(prior_model, "policy"):
            raise ValueError(
                f"prior_model must be an SB3 model (with a policy), got {type(prior_model).__name__}"
            )
        self.prior_model = prior_model
        self.c_puct = check_positive("c_puct", c_puct)
        self.n_actions, self.action_start = int(env.action_space.n), int(env.action_space.start)
        self.rng = np.random.default_rng(seed)
        self._snapshots = hasattr(env.unwrapped, "get_state") and hasattr(env.unwrapped, "set_state")
        self._last_observation: Any = None
        self._check_cloneable()

    # ------------------------------------------------------------------ cloning
    def _check_cloneable(self) -> None:
        try:
            copy.deepcopy(self.env)
        except Exception as err:  # noqa: BLE001 - any failure means the env cannot be searched
            raise ValueError(
                f"env: MCTS needs an env it can clone (get_state/set_state or copy.deepcopy); "
                f"copy.deepcopy({type(self.env).__name__}) failed: {err}"
            ) from None

    @staticmethod
    def _wrappers(env: gym.Env) -> list[gym.Env]:
        chain = []
        while isinstance(env, gym.Wrapper):
            chain.append(env)
            env = env.env
        return chain

    def _root(self) -> tuple[gym.Env, Any]:
        """A private copy of the env and the snapshot of its current state: the base env's
        ``get_state`` and each wrapper's own attributes (a ``TimeLimit``'s step count, ...)."""
        sim = copy.deepcopy(self.env)
        if not self._snapshots:
            return sim, copy.deepcopy(sim)
        wrappers = [
            copy.deepcopy({k: v for k, v in w.__dict__.items() if k != "env"}) for w in self._wrappers(sim)
        ]
        return sim, (sim.unwrapped.get_state(), wrappers)

    def _restore(self, sim: gym.Env, snapshot: Any) -> gym.Env:
        """``sim`` put back into the root's state (a fresh deep copy for envs without snapshots)."""
        if not self._snapshots:
            return copy.deepcopy(snapshot)
        state, wrappers = snapshot
        sim.unwrapped.set_state(state)
        for wrapper, attributes in zip(self._wrappers(sim), wrappers, strict=True):
            wrapper.__dict__.update(copy.deepcopy(attributes))
        return sim

    # ------------------------------------------------------------------ priors
    def _prior(self, observation: Any) -> tuple[np.ndarray, float]:
        """``(P(.|s), V(s))`` from the prior model."""
        policy = self.prior_model.policy
        obs, _ = policy.obs_to_tensor(observation)
        with th.no_grad():
            if hasattr(policy, "q_net"):  # DQN family
                q = policy.q_net(obs)[0]
                return th.softmax(q, dim=-1).cpu().numpy(), float(q.max())
            distribution = policy.get_distribution(obs)
            probs = distribution.distribution.probs[0].cpu().numpy()
            return probs, float(policy.predict_values(obs)[0, 0])

    # ------------------------------------------------------------------ search
    def _select(self, node: _Node) -> int:
        untried = [a for a in range(self.n_actions) if a not in node.children]
        if untried and self.prior_model is None:
            return int(self.rng.choice(untried))
        best, best_score = 0, -math.inf
        for action in range(self.n_actions):
            child = node.children.get(action)
            visits = child.visits if child else 0
            q = child.reward + self.gamma * child.value() if child and visits else 0.0
            if self.prior_model is None:
                score = q + self.c_uct * math.sqrt(math.log(node.visits) / visits)
            else:
                assert node.priors is not None
                score = q + self.c_puct * float(node.priors[action]) * math.sqrt(node.visits) / (1 + visits)
            score += 1e-9 * self.rng.random()  # random tie-breaking
            if score > best_score:
                best, best_score = action, score
        return best

    def _rollout(self, sim: gym.Env, depth_left: int) -> float:
        """Discounted return of uniformly random actions for up to ``rollout_depth`` steps."""
        total, discount = 0.0, 1.0
        for _ in range(min(self.rollout_depth, depth_left)):
            action = self.action_start + int(self.rng.integers(self.n_actions))
            _, reward, terminated, truncated, _ = sim.step(action)
            total += discount * float(reward)
            discount *= self.gamma
            if terminated or truncated:
                break
        return total

    def search(self) -> dict[int, tuple[int, float]]:
        """Run the simulations from the env's current state; ``{action: (visits, Q)}`` at the root."""
        sim, snapshot = self._root()
        root = _Node()
        if self.prior_model is not None:
            root.priors = self._prior(self._last_observation)[0]
        for _ in range(self.n_simulations):
            sim = self._restore(sim, snapshot)
            node, path, depth, observation = root, [root], 0, self._last_observation
            while not node.terminal and depth < self.max_depth:
                action = self._select(node)
                observation, reward, terminated, truncated, _ = sim.step(self.action_start + action)
                depth += 1
                if action not in node.children:  # expand one new node per simulation
                    child = _Node()
                    child.reward, child.terminal = float(reward), bool(terminated or truncated)
                    node.children[action] = child
                    path.append(child)
                    node = child
                    break
                node = node.children[action]
                path.append(node)
            value = 0.0
            if not node.terminal and depth < self.max_depth:
                if self.prior_model is not None:
                    if node.priors is None:
                        node.priors, value = self._prior(observation)
                    else:
                        value = self._prior(observation)[1]
                else:
                    value = self._rollout(sim, self.max_depth - depth)
            # Back up: a node's value is the discounted return from it, its reward excluded.
            for visited in reversed(path):
                visited.visits += 1
                visited.value_sum += value
                value = visited.reward + self.gamma * value
        return {a: (c.visits, c.reward + self.gamma * c.value()) for a, c in root.children.items()}

    def predict(
        self,
        observation: Any = None,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """The most visited root action after :attr:`n_simulations` simulations from the env's
        current state (``observation`` is that state's observation, used by ``prior_model``), as
        SB3's ``predict`` returns it: ``(action, None)``."""
        if self.prior_model is not None and observation is None:
            raise ValueError("observation: MCTS with a prior_model needs the current observation")
        self._last_observation = observation
        stats = self.search()
        most = max(visits for visits, _ in stats.values())
        best = [a for a, (visits, _) in stats.items() if visits == most]
        action = max(best, key=lambda a: stats[a][1])
        return np.array(self.action_start + action), None
