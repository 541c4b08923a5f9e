"""A training progress bar that also shows what the evaluations during training are doing.

SB3's ``progress_bar=True`` stands still while ``EvalCallback`` evaluates, which for a planner
such as ``WorldModelMPC`` can take minutes. :class:`EvalWithProgress` reports each evaluation's
episodes into :class:`TrainingProgressBar`'s description as they finish ("evaluating 2/5 episodes,
mean so far -153.2"), and the last result once it is done.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import EvalCallback, ProgressBarCallback


class TrainingProgressBar(ProgressBarCallback):
    """SB3's progress bar with a status text (the bar's description) that other callbacks can set."""

    def status(self, text: str) -> None:
        if getattr(self, "pbar", None) is not None:
            self.pbar.set_description_str(text, refresh=True)


class EvalWithProgress(EvalCallback):
    """SB3's ``EvalCallback`` that shows episodes done and the mean return so far in ``progress``.

    :param progress: the bar to report to (None: report nothing, behave as ``EvalCallback``)
    :param kwargs: ``EvalCallback``'s arguments
    """

    def __init__(self, *args: Any, progress: TrainingProgressBar | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress
        self._finished: list[float] = []

    def _on_step(self) -> bool:
        evaluating = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
        self._finished = []
        if evaluating and self.progress is not None:
            self.progress.status(f"evaluating 0/{self.n_eval_episodes} episodes")
        continue_training = super()._on_step()
        if evaluating and self.progress is not None and self.evaluations_results:
            last = self.evaluations_results[-1]
            self.progress.status(f"last evaluation {np.mean(last):.1f} +- {np.std(last):.1f}")
        return continue_training

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        episode_return = finished_return(locals_)
        if self.progress is not None and episode_return is not None:
            self._finished.append(episode_return)
            self.progress.status(
                f"evaluating {len(self._finished)}/{self.n_eval_episodes} episodes, mean so far {np.mean(self._finished):.1f}"
            )


def finished_return(locals_: dict[str, Any]) -> float | None:
    """The return of the episode that ends at this step of SB3's ``evaluate_policy``, else None.

    ``evaluate_policy`` calls its callback before it records the step, with ``done``, ``info`` and
    ``current_rewards`` (which already includes this step's reward) among its local variables. With a
    ``Monitor``, only an ``info["episode"]`` marks the true end of an episode, as SB3 itself counts.
    """
    if not locals_["done"]:
        return None
    info = locals_["info"]
    if locals_.get("is_monitor_wrapped"):
        return float(info["episode"]["r"]) if "episode" in info else None
    return float(locals_["current_rewards"][locals_["i"]])
