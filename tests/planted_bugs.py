"""Plant realistic one-line bugs, one at a time, and check that the test suite catches each of them.

For every bug in :data:`BUGS` the script copies the working tree (``git ls-files``: tracked and
untracked-but-not-ignored files) to a temporary directory, replaces one line of one file there
(the original text must occur exactly once, so the script fails loudly when the code has moved),
runs the test files that cover that code with pytest, and restores the file. The unmodified copy
is tested first: a bug only counts as caught if the same tests pass without it.

Usage (from the repository root; not collected by pytest)::

    .venv/bin/python tests/planted_bugs.py            # every bug, markdown table on stdout
    .venv/bin/python tests/planted_bugs.py -k cartpole # the bugs whose id contains "cartpole"

Exit status 0 when the unmodified copy passes and every bug is caught, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    """One planted bug: in ``path``, ``original`` (found exactly once) becomes ``planted``."""

    id: str
    description: str
    path: str
    original: str
    planted: str
    tests: tuple[str, ...]


BUGS = [
    Bug(
        "td-target-done-mask",
        "The one-step TD target (DQN, QR-DQN, SAC, TD3, Dyna, AuxDQN) bootstraps through terminal transitions",
        "sb3_ext/common/td.py",
        "return rewards + (1 - dones) * discounts * next_values",
        "return rewards + discounts * next_values",
        ("tests/test_per.py",),
    ),
    Bug(
        "double-q-target-network",
        "The Double DQN target evaluates the online network's argmax with the online network",
        "sb3_ext/common/td.py",
        "next_values = th.gather(next_q_values, dim=1, index=next_actions)",
        "next_values = th.gather(q_net(next_obs), dim=1, index=next_actions)",
        ("tests/test_aux_dqn.py",),
    ),
    Bug(
        "dyna-planning-buffer",
        "Dyna's planning updates sample the real replay buffer instead of the model buffer",
        "sb3_ext/dyna/dyna.py",
        "losses.append(self._q_update(self.model_buffer.sample(batch_size",
        "losses.append(self._q_update(self.replay_buffer.sample(batch_size",
        ("tests/test_dyna.py",),
    ),
    Bug(
        "dyna-mixed-batch-buffer",
        "Dyna's mixed batches take their imagined part from the real replay buffer",
        "sb3_ext/dyna/dyna.py",
        "imagined = self.model_buffer.sample(n_imagined, env=self._vec_normalize_env)",
        "imagined = self.replay_buffer.sample(n_imagined, env=self._vec_normalize_env)",
        ("tests/test_dyna.py",),
    ),
    Bug(
        "option-critic-arrival-value",
        "OptionCritic's U(s, w) swaps beta and 1 - beta",
        "sb3_ext/option_critic/option_critic.py",
        "return (1.0 - beta_w) * q_target[rows, options] + beta_w * q_target.max(dim=1).values",
        "return beta_w * q_target[rows, options] + (1.0 - beta_w) * q_target.max(dim=1).values",
        ("tests/test_option_critic.py",),
    ),
    Bug(
        "aux-dqn-loss-weight",
        "AuxDQN ignores the auxiliary loss weights",
        "sb3_ext/aux_dqn/aux_dqn.py",
        "loss = loss + coef * task_loss",
        "loss = loss + task_loss",
        ("tests/test_aux_dqn.py",),
    ),
    Bug(
        "model-truncation-terminal",
        "WorldModelMPC and Dyna teach their termination heads that time-limit truncations are terminations",
        "sb3_ext/common/transitions.py",
        "terminations=(buffer.dones[:n] * (1.0 - timeouts)).reshape(-1),",
        "terminations=buffer.dones[:n].reshape(-1),",
        ("tests/test_mpc.py",),
    ),
    Bug(
        "cartpole-termination-fn",
        "ContinuousCartPole's termination_fn checks x > 2.4 instead of |x| > 2.4",
        "gym_advrl/envs/cartpole.py",
        "(np.abs(next_obs[..., 0]) > X_THRESHOLD)",
        "(next_obs[..., 0] > X_THRESHOLD)",
        ("tests/test_classic_envs.py",),
    ),
    Bug(
        "particles-exit-reward",
        "The agent leaving the arena is rewarded with the post-exit in-play flags",
        "gym_advrl/marl/_particles.py",
        "rewards = self.scenario.rewards(self.positions, active, self.teams)",
        "rewards = self.scenario.rewards(self.positions, active & ~exited, self.teams)",
        ("tests/test_marl.py",),
    ),
    Bug(
        "maddpg-attention-own-action-query",
        "MADDPG's actor loss takes the attention query from the replayed action, not the actor's",
        "sb3_ext/marl/maddpg/networks.py",
        "attended, _ = self.attention(embeddings, active, query_embeddings=own)",
        "attended, _ = self.attention(embeddings, active)",
        ("tests/test_marl_algorithms.py",),
    ),
    Bug(
        "random-shift-offsets",
        "RandomShift draws offsets from [0, 2 pad) instead of [0, 2 pad]",
        "gym_advrl/wrappers/observation.py",
        "integers(0, 2 * self.pad + 1, size=2)",
        "integers(0, 2 * self.pad, size=2)",
        ("tests/test_wrappers.py",),
    ),
    Bug(
        "aux-dqn-random-shift-offsets",
        "AuxDQN's random shift draws row offsets from [0, 2 pad) instead of [0, 2 pad]",
        "sb3_ext/aux_dqn/augmentation.py",
        "shift_rows = th.randint(0, 2 * pad + 1, (batch, 1), device=images.device)",
        "shift_rows = th.randint(0, 2 * pad, (batch, 1), device=images.device)",
        ("tests/test_aux_dqn.py",),
    ),
    Bug(
        "sum-tree-repeated-index",
        "SumTree.update keeps the first instead of the last priority of a repeated index",
        "sb3_ext/common/segment_tree.py",
        "for k in range(indices.size):  # in order, so that a repeated index keeps its last priority",
        "for k in range(indices.size - 1, -1, -1):",
        ("tests/test_per.py",),
    ),
]


def copy_working_tree(destination: Path) -> None:
    """Copy the files git knows of (tracked, or untracked and not ignored) as they are on disk."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # skip files deleted in the working tree
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_tests(workdir: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    """Run ``tests`` with pytest in ``workdir``; return the exit code and the first failing test."""
    env = {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-rf",
        *tests,
    ]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
    return result.returncode, failed.group(1) if failed else ""


def check_imports_resolve_to(workdir: Path) -> None:
    """The copy, not an installed (editable) package, must be what the tests import."""
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    code = "import gym_advrl, sb3_ext; print(gym_advrl.__file__); print(sb3_ext.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, check=True, capture_output=True, text=True
    )
    for path in out.stdout.split():
        if not Path(path).resolve().is_relative_to(workdir.resolve()):
            raise SystemExit(f"the tests would import {path}, not the copy in {workdir}")


def plant(workdir: Path, bug: Bug) -> str:
    """Apply ``bug`` in ``workdir``; return the original file text."""
    path = workdir / bug.path
    text = path.read_text()
    count = text.count(bug.original)
    if count != 1:
        raise SystemExit(
            f"{bug.id}: the original text occurs {count} times in {bug.path} (expected once): update BUGS"
        )
    path.write_text(text.replace(bug.original, bug.planted))
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="select", default="", help="only the bugs whose id contains this string")
    args = parser.parse_args()
    bugs = [bug for bug in BUGS if args.select in bug.id]
    if not bugs:
        parser.error(f"no bug id contains {args.select!r}")

    rows, all_good = [], True
    with tempfile.TemporaryDirectory(prefix="planted-bugs-") as tmp:
        workdir = Path(tmp)
        copy_working_tree(workdir)
        check_imports_resolve_to(workdir)
        all_tests = tuple(dict.fromkeys(test for bug in bugs for test in bug.tests))
        start = time.perf_counter()
        code, failed = run_tests(workdir, all_tests)
        baseline_ok = code == 0
        all_good &= baseline_ok
        verdict = "pass" if baseline_ok else f"**FAIL** (exit {code}: {failed})"
        rows.append(
            ("-", "none (unmodified code)", ", ".join(all_tests), verdict, time.perf_counter() - start)
        )
        for number, bug in enumerate(bugs, 1):
            original = plant(workdir, bug)
            start = time.perf_counter()
            try:
                code, failed = run_tests(workdir, bug.tests)
            finally:
                (workdir / bug.path).write_text(original)
            if code == 1:
                verdict = f"caught by `{failed}`"
            elif code == 0:
                verdict, all_good = "**MISSED**", False
            else:
                verdict, all_good = f"**ERROR** (pytest exit {code})", False
            rows.append(
                (
                    str(number),
                    f"`{bug.path}`: {bug.description}",
                    ", ".join(bug.tests),
                    verdict,
                    time.perf_counter() - start,
                )
            )

    print("| # | planted bug | tests run | result | time (s) |")
    print("|---|---|---|---|---|")
    for number, description, tests, verdict, seconds in rows:
        cells = (cell.replace("|", "\\|") for cell in (number, description, tests, verdict))
        print("| {} | {} | {} | {} | {:.0f} |".format(*cells, seconds))
    caught = sum(row[3].startswith("caught") for row in rows[1:])
    print(
        f"\n{caught} of {len(bugs)} planted bugs caught; unmodified code {'passes' if baseline_ok else 'FAILS'}."
    )
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main())
