"""What a sweep reports and leaves in its run directory: the SB3 callback that reports each evaluation,
the trial table sorted by score, the best configuration as a file ``advrl train --hp-file`` reads,
and a plot of every trial's evaluation curve.

A trial's score is its best evaluation: the highest mean return of its deterministic evaluations.
Trials stopped early by the scheduler keep the evaluations they had; a trial that crashed has no
score and is listed last with the last line of its error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

#: The metric every trial reports and the scheduler compares (higher is better).
METRIC = "eval_return"
#: The progress measure of a trial (the scheduler's time attribute).
TIME_ATTR = "timesteps"

TABLE_FILE = "trials.md"
RECORDS_FILE = "trials.json"
BEST_FILE = "best_hyperparameters.yml"
PLOT_FILE = "trial_curves.png"


class EvalReportCallback(BaseCallback):
    """Reports every evaluation of an SB3 ``EvalCallback`` to a sweep (Ray Tune's ``tune.report``).

    Pass it as ``EvalCallback(eval_env, callback_after_eval=EvalReportCallback(tune.report))``:
    after each evaluation it calls ``report({"eval_return": <mean return>, "timesteps": <steps>,
    **extra})``, the evaluation's mean return as the parent ``EvalCallback`` computed it.

    :param report: the function that receives each evaluation's metrics.
    :param extra: constant entries added to every report (e.g. the node the trial runs on).
    :param verbose: verbosity level (0: nothing printed).
    """

    def __init__(
        self, report: Callable[[dict[str, Any]], Any], extra: dict[str, Any] | None = None, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        self.report = report
        self.extra = dict(extra or {})

    def _on_step(self) -> bool:
        if self.parent is None or not hasattr(self.parent, "last_mean_reward"):
            raise ValueError("EvalReportCallback must be an EvalCallback's callback_after_eval")
        metrics = {METRIC: float(self.parent.last_mean_reward), TIME_ATTR: int(self.num_timesteps)}
        if self.verbose >= 1:
            print(f"reporting {METRIC} {metrics[METRIC]:.2f} at {metrics[TIME_ATTR]} steps")
        self.report({**metrics, **self.extra})
        return True


@dataclass
class TrialRecord:
    """One trial of a sweep.

    :param trial_id: Ray Tune's id of the trial.
    :param hyperparameters: the sampled hyperparameters (the searched ones only).
    :param timesteps: environment steps at each evaluation.
    :param returns: mean return of each evaluation.
    :param node_id: the Ray node the trial ran on ("" if it never reported).
    :param error: the last line of the trial's error, "" if it did not crash.
    :param wall_s: seconds the trial ran, from Tune's ``time_total_s`` (0 if it never reported).
    """

    trial_id: str
    hyperparameters: dict[str, Any]
    timesteps: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    node_id: str = ""
    error: str = ""
    wall_s: float = 0.0

    @property
    def score(self) -> float | None:
        """The best evaluation's mean return; None for a trial without evaluations."""
        finite = [r for r in self.returns if math.isfinite(r)]
        return max(finite) if finite else None

    def status(self, total_timesteps: int) -> str:
        if self.error:
            return "error"
        if not self.timesteps:
            return "no evaluation"
        return "completed" if self.timesteps[-1] >= total_timesteps else "stopped early"


def sort_by_score(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Best score first; trials without a score (crashed, never evaluated) last, in id order."""
    return sorted(records, key=lambda r: (r.score is None, -(r.score or 0.0), r.trial_id))


def trial_table(records: Sequence[TrialRecord], total_timesteps: int) -> str:
    """A markdown table of the trials sorted by score, one column per searched hyperparameter."""
    ordered = sort_by_score(records)
    names = sorted({name for record in ordered for name in record.hyperparameters})
    nodes = {node: index for index, node in enumerate(sorted({r.node_id for r in ordered if r.node_id}))}
    header = [
        "rank",
        "trial",
        "status",
        "best eval return",
        "last eval return",
        "steps",
        "node",
        *names,
        "error",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, record in enumerate(ordered, start=1):
        cells = [
            str(rank),
            record.trial_id,
            record.status(total_timesteps),
            "-" if record.score is None else f"{record.score:.2f}",
            f"{record.returns[-1]:.2f}" if record.returns else "-",
            str(record.timesteps[-1]) if record.timesteps else "0",
            f"node {nodes[record.node_id]}" if record.node_id else "-",
            *(_cell(record.hyperparameters.get(name, "")) for name in names),
            _cell(record.error) or "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def best_record(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The trial with the best score, or None if no trial was evaluated."""
    ordered = sort_by_score(records)
    return ordered[0] if ordered and ordered[0].score is not None else None


def write_best_hyperparameters(
    path: Path, hyperparameters: dict[str, Any], command: str, score: float
) -> Path:
    """The best configuration as a YAML mapping that ``advrl train --hp-file`` reads, the command that
    retrains it in a comment on top."""
    import yaml

    text = f"# best trial: best evaluation mean return {score:.2f}\n# retrain: {command}\n" + yaml.safe_dump(
        _plain(hyperparameters), sort_keys=True, default_flow_style=None
    )
    path.write_text(text)
    return path


def write_records(path: Path, records: Sequence[TrialRecord], settings: dict[str, Any]) -> Path:
    """Every trial's record and the sweep's settings, as JSON (the plot and the table are rebuilt from it)."""
    payload = {"settings": settings, "trials": [asdict(record) for record in records]}
    path.write_text(json.dumps(_plain(payload), indent=2))
    return path


def read_records(path: Path) -> tuple[list[TrialRecord], dict[str, Any]]:
    """The records and settings :func:`write_records` wrote."""
    payload = json.loads(Path(path).read_text())
    return [TrialRecord(**trial) for trial in payload["trials"]], payload["settings"]


def plot_trials(path: Path, records: Sequence[TrialRecord], title: str) -> Path:
    """Every trial's evaluation curve (mean return against steps), the best one drawn bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = best_record(records)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for record in sort_by_score(records):
        if not record.returns:
            continue
        is_best = best is not None and record.trial_id == best.trial_id
        ax.plot(
            record.timesteps,
            record.returns,
            marker="o",
            markersize=3,
            linewidth=2.5 if is_best else 1.0,
            alpha=1.0 if is_best else 0.6,
            label=f"{record.trial_id} (best {record.score:.1f})"
            if record.score is not None
            else record.trial_id,
        )
    crashed = sum(1 for record in records if record.error)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation mean return")
    ax.set_title(title + (f" ({crashed} crashed trial(s) not drawn)" if crashed else ""))
    if any(record.returns for record in records):
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("|", "/").replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


def _plain(value: Any) -> Any:
    """Numpy scalars and tuples as plain Python values, so YAML and JSON write them as literals."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
