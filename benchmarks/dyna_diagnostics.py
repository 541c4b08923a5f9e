"""Diagnostics of ``benchmarks/dyna.py deep``: what Dyna's learned model gets wrong, and what it costs.

Takes every flag of ``dyna.py deep`` and prints its table, plus:

* ``--true-model reward termination state`` (any of them): Dyna imagines with GridWorld's true
  reward / termination / next cell in place of its learned model's (a
  :class:`~sb3_ext.common.dynamics.ProbabilisticEnsemble` subclass passed as ``model_class``), to
  measure what each learned part costs;
* ``--model-report``: after every model fit, the model's reward and termination for the steps into
  the goal and for all other state-action pairs, the exploration bonus (if any), and the
  Q-network's largest and mean values and its largest on the goal cell.

    python benchmarks/dyna_diagnostics.py --agents Dyna --seeds 1 --model-report [dyna.py deep flags]
    python benchmarks/dyna_diagnostics.py --agents Dyna --seeds 30 --true-model reward termination

Runs are saved under ``benchmarks/results/dyna/diagnostics/`` (``--from-results`` as in ``dyna.py``).
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import Results, measure_or_load
from dyna import DEEP_ENV_KWARGS, add_deep_arguments, check_deep_arguments, deep_tables, run_deep

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.dyna import Dyna

#: Parts of the learned model that ``--true-model`` can replace by the environment's own.
TRUE_MODEL_PARTS = ("reward", "termination", "state")


def true_transitions(env_kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GridWorld's true next observation, reward and termination of every (row, col, action),
    tabulated by stepping a (deterministic) GridWorld made with ``env_kwargs``."""
    grid = gym.make("AdvRL/GridWorld-v0", **env_kwargs).unwrapped
    grid.reset()
    shape = (grid.rows, grid.cols, grid.action_space.n)
    true_next, true_reward = torch.zeros(*shape, 2), torch.zeros(shape)
    true_terminated = torch.zeros(shape, dtype=torch.bool)
    for row, col, action in np.ndindex(*shape):
        grid.position = (row, col)
        next_obs, reward, terminated, _, _ = grid.step(action)
        true_next[row, col, action] = torch.as_tensor(next_obs)
        true_reward[row, col, action], true_terminated[row, col, action] = reward, terminated
    return true_next, true_reward, true_terminated


class PartlyTrueModel(ProbabilisticEnsemble):
    """The learned ensemble, except that the parts named in ``true_parts`` of every sample (next
    cell, reward, termination) are GridWorld's true ones for the observed cell and action."""

    def __init__(
        self,
        *args: Any,
        true_parts: tuple[str, ...] = (),
        env_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.true_parts = tuple(true_parts)
        self.true_next, self.true_reward, self.true_terminated = true_transitions(env_kwargs or {})
        self.highest_cell = torch.tensor(self.true_reward.shape[:2]) - 1

    def sample(self, obs, actions, *args: Any, **kwargs: Any):
        next_obs, reward, terminated = super().sample(obs, actions, *args, **kwargs)
        cell = torch.minimum(torch.as_tensor(obs).round().long().clamp(min=0), self.highest_cell)
        key = (cell[:, 0], cell[:, 1], torch.as_tensor(actions).long().reshape(-1))
        if "state" in self.true_parts:
            next_obs = self.true_next[key]
        if "termination" in self.true_parts:
            terminated = self.true_terminated[key]
        if "reward" in self.true_parts:
            reward = self.true_reward[key]
        return next_obs, reward, terminated


class ModelReportingDyna(Dyna):
    """Dyna that prints :meth:`model_report` after every model fit."""

    def __init__(self, policy: Any, env: gym.Env, *args: Any, **kwargs: Any) -> None:
        grid = env.unwrapped
        _, true_reward, _ = true_transitions(grid.spec.kwargs)
        self.goal_cell = grid.goal
        pairs = torch.cartesian_prod(*(torch.arange(n) for n in true_reward.shape))  # (row, col, action)
        pairs = pairs[(pairs[:, 0] != self.goal_cell[0]) | (pairs[:, 1] != self.goal_cell[1])]
        self.report_obs, self.report_actions = pairs[:, :2].float(), pairs[:, 2]
        self.enters_goal = true_reward[pairs[:, 0], pairs[:, 1], pairs[:, 2]] > 0
        super().__init__(policy, env, *args, **kwargs)

    def train_model(self) -> dict[str, float]:
        stats = super().train_model()
        print(self.model_report(), flush=True)
        return stats

    def model_report(self) -> str:
        """What the model predicts (means over the members) for the state-action pairs that enter
        the goal and for all others, the exploration bonus (if any), and the Q-network's largest and
        mean values over those pairs and its largest on the goal cell."""
        obs, actions, enters_goal = self.report_obs, self.report_actions, self.enters_goal
        prediction = self.dynamics_model.predict(obs, actions)
        reward, termination = prediction.reward_mean.mean(0), prediction.termination_prob.mean(0)
        others = reward[~enters_goal]
        goal_transitions = int((self.real_transitions().rewards > 0).sum())
        with torch.no_grad():
            q_values = self.q_net(obs)
            goal_cell_q = float(self.q_net(torch.tensor([self.goal_cell], dtype=torch.float32)).max())
        bonus = ""
        if self.exploration_bonus > 0:
            kappa_d = self.exploration_bonus * self.dynamics_model.disagreement(obs, actions)
            with_bonus = (reward + kappa_d)[~enters_goal]
            bonus = (
                f"; bonus mean {float(kappa_d.mean()):.2f}, largest {float(kappa_d.max()):.2f}; other pairs with "
                f"reward + bonus > 0: {int((with_bonus > 0).sum())} (their mean "
                f"{float(with_bonus[with_bonus > 0].mean()) if (with_bonus > 0).any() else 0.0:.2f}, "
                f"largest {float(with_bonus.max()):.2f})"
            )
        return (
            f"  step {self.num_timesteps}: {goal_transitions} goal transitions; pairs entering the goal: "
            f"reward {', '.join(f'{r:.2f}' for r in reward[enters_goal])}, "
            f"termination {', '.join(f'{p:.2f}' for p in termination[enters_goal])}; other pairs: "
            f"{int((others > 0).sum())} of {others.numel()} with reward > 0 (largest {float(others.max()):.2f}), "
            f"termination up to {float(termination[~enters_goal].max()):.2f}{bonus}; largest Q {float(q_values.max()):.1f}, "
            f"mean Q {float(q_values.mean()):.1f}, largest Q on the goal cell (never an observation) {goal_cell_q:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_deep_arguments(parser)
    parser.add_argument(
        "--true-model",
        nargs="+",
        choices=TRUE_MODEL_PARTS,
        default=[],
        help="imagine with GridWorld's true reward / termination / next cell instead of the learned ones",
    )
    parser.add_argument(
        "--model-report",
        action="store_true",
        help="after every model fit, print the model's reward and termination at and away from the goal",
    )
    args = parser.parse_args()
    check_deep_arguments(parser, args)
    torch.set_num_threads(1)

    def measure(results: Results) -> None:
        model: dict[str, Any] = {}
        if args.true_model:
            results.describe(
                notes=[f"Dyna imagines with GridWorld's true {', '.join(args.true_model)} (diagnostic)"]
            )
            parts = dict(true_parts=tuple(args.true_model), env_kwargs=DEEP_ENV_KWARGS)
            model = dict(model_class=PartlyTrueModel, model_kwargs=parts)
        run_deep(results, args, ModelReportingDyna if args.model_report else Dyna, **model)

    print(deep_tables(measure_or_load("dyna/diagnostics", args, measure)))


if __name__ == "__main__":
    main()
