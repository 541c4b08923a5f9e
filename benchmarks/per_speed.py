"""Prioritized replay speed: sample + priority update, and insertion, against SB3 and tianshou.

For each capacity (default 1e4, 1e5, 1e6) the buffers are filled with the same random data
(``--obs-dim`` float32 observations, discrete actions) and priorities, then timed in the same
process as CPU time of this thread per call, in paired rounds: within every round each operation
runs ``--calls`` times in turn (the order rotates from round to round), and each ratio is taken
between operations of the same round, so that a drift in the speed of a shared machine hits both
sides of a ratio alike. The tables give the median time per call and the min / median / max of
each ratio over the rounds:

* SB3 ``ReplayBuffer.sample(256)`` (uniform), the reference;
* ours: ``PrioritizedReplayBuffer.sample(256)`` + ``update_priorities`` of those 256 indices;
* tianshou ``PrioritizedReplayBuffer.sample(256)`` + ``update_weight`` (if tianshou is
  installed, e.g. in a separate venv with this package; its sample returns numpy arrays, SB3's
  and ours torch tensors);
* insertion of single transitions (``add``) into the full buffers;
* the one-off cost of the compiled sum tree: CPU seconds of ``import numba`` and of the first
  update, range update and search in a fresh process, with an empty numba cache (compilation)
  and again with the cache that run wrote (loading), both in subprocesses.

    python benchmarks/per_speed.py [--capacities 10000 100000 1000000] [--rounds 21] [--calls 200]
                                   [--obs-dim 8] [--inserts 2000] [--from-results [JSON ...]]

Every round's timings are saved under ``benchmarks/results/per_speed/``; ``--from-results``
reprints the tables from the latest file (or the files given) without measuring.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch as th
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    save_ratio_plot,
)
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_ext import PrioritizedReplayBuffer

BATCH = 256
SB3_SAMPLE, OURS, OURS_SAMPLE, TIANSHOU = (
    "SB3 ReplayBuffer.sample (uniform)",
    "ours: sample + update_priorities",
    "ours: sample only",
    "tianshou: sample + update_weight",
)
SB3_ADD, OURS_ADD, TIANSHOU_ADD = "SB3 ReplayBuffer.add", "ours: add", "tianshou: add"


def paired_rounds(fns: dict[str, Callable[[], object]], calls: int, rounds: int) -> dict[str, np.ndarray]:
    """CPU seconds per call of each function in each round; the functions take turns within a round."""
    for fn in fns.values():  # warm up: first-call work (compiled code, caches) stays out of the rounds
        for _ in range(3):
            fn()
    names = list(fns)
    times = {name: np.empty(rounds) for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = fns[name]
            start = time.thread_time()
            for _ in range(calls):
                fn()
            times[name][r] = (time.thread_time() - start) / calls
    return times


FIRST_USE = """
import time
start = time.process_time()
import numba
imported = time.process_time()
import numpy as np
from sb3_ext.common.segment_tree import SumTree
begin = time.process_time()
tree = SumTree(1000)
tree.update_range(0, 1000, 1.0)
tree.update(np.arange(8), np.ones(8))
tree.sample_stratified(np.full(8, 0.5))
print(imported - start, time.process_time() - begin)
"""


def first_use_seconds() -> dict[str, float]:
    """CPU seconds of ``import numba`` and of the tree's first calls, uncached then cached."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [
            [
                float(x)
                for x in subprocess.run(
                    [sys.executable, "-c", FIRST_USE], env=env, capture_output=True, text=True, check=True
                ).stdout.split()
            ]
            for _ in range(2)
        ]
    return {
        "import numba": runs[0][0],
        "first calls, empty cache (compiles)": runs[0][1],
        "first calls, cache on disk": runs[1][1],
    }


def fill_sb3(buffer: ReplayBuffer, rng: np.random.Generator) -> None:
    """Fill the arrays directly (a million Python-level ``add`` calls would dominate the run)."""
    buffer.observations[:] = rng.standard_normal(buffer.observations.shape, dtype=np.float32)
    buffer.next_observations[:] = rng.standard_normal(buffer.next_observations.shape, dtype=np.float32)
    buffer.actions[:] = rng.integers(0, 4, buffer.actions.shape)
    buffer.rewards[:] = rng.standard_normal(buffer.rewards.shape, dtype=np.float32)
    buffer.full, buffer.pos = True, 0


def make_tianshou(capacity: int, obs_dim: int, rng: np.random.Generator, priorities: np.ndarray):
    try:
        from tianshou.data import Batch
        from tianshou.data import PrioritizedReplayBuffer as TianshouPER
    except ImportError:
        return None, None
    buffer = TianshouPER(capacity, alpha=0.6, beta=0.4)
    zeros = np.zeros(capacity, dtype=bool)
    buffer.set_batch(
        Batch(
            obs=rng.standard_normal((capacity, obs_dim), dtype=np.float32),
            act=rng.integers(0, 4, capacity),
            rew=rng.standard_normal(capacity, dtype=np.float32),
            terminated=zeros,
            truncated=zeros,
            done=zeros,
            obs_next=rng.standard_normal((capacity, obs_dim), dtype=np.float32),
        )
    )
    buffer._size = capacity
    buffer.weight[np.arange(capacity)] = priorities
    return buffer, Batch


def measure(capacity: int, args: argparse.Namespace) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    obs_space = spaces.Box(-np.inf, np.inf, (args.obs_dim,), np.float32)
    action_space = spaces.Discrete(4)
    priorities = rng.random(capacity) ** 0.6
    td_errors = rng.standard_normal(BATCH)

    uniform = ReplayBuffer(capacity, obs_space, action_space, device="cpu")
    fill_sb3(uniform, rng)
    ours = PrioritizedReplayBuffer(capacity, obs_space, action_space, device="cpu")
    fill_sb3(ours, rng)
    ours.tree.update(np.arange(capacity), priorities)
    tianshou, Batch = make_tianshou(capacity, args.obs_dim, rng, priorities)

    def ours_sample_update() -> None:
        batch = ours.sample(BATCH)
        ours.update_priorities(batch.indices, td_errors)

    def tianshou_sample_update() -> None:
        _, indices = tianshou.sample(BATCH)
        tianshou.update_weight(indices, td_errors)

    sampling = {
        SB3_SAMPLE: lambda: uniform.sample(BATCH),
        OURS: ours_sample_update,
        OURS_SAMPLE: lambda: ours.sample(BATCH),
    }
    if tianshou is not None:
        sampling[TIANSHOU] = tianshou_sample_update

    obs = rng.standard_normal((1, args.obs_dim), dtype=np.float32)
    action, reward, done, infos = np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}]
    inserting = {
        SB3_ADD: lambda: uniform.add(obs, obs, action, reward, done, infos),
        OURS_ADD: lambda: ours.add(obs, obs, action, reward, done, infos),
    }
    if tianshou is not None:
        transition = Batch(
            obs=obs[0], act=0, rew=0.0, terminated=False, truncated=False, obs_next=obs[0], info={}
        )
        inserting[TIANSHOU_ADD] = lambda: tianshou.add(transition)
    return {
        "sample": paired_rounds(sampling, args.calls, args.rounds),
        "add": paired_rounds(inserting, args.inserts, args.rounds),
    }


def spread(ratios: np.ndarray) -> str:
    return f"{np.min(ratios):.2f}x / {np.median(ratios):.2f}x / {np.max(ratios):.2f}x"


def print_tables(record: dict) -> None:
    """The markdown tables of a results record (see :func:`main`)."""
    args, runs = record["args"], record["runs"]
    timings = {
        run["capacity"]: {
            kind: {k: np.asarray(v) for k, v in run[kind].items()} for kind in ("sample", "add")
        }
        for run in runs
    }
    print(
        f"batch {BATCH}, obs {args['obs_dim']} float32, {record['processor'] or record['machine']}; CPU time of "
        f"this thread; {args['rounds']} paired rounds of {args['calls']} calls (add: {args['inserts']}); "
        "ratios: min / median / max over the rounds\n"
    )
    rows = []
    for capacity, t in timings.items():
        rows += [
            (f"{capacity:,}", name, f"{np.median(s) * 1e6:.0f}", spread(s / t["sample"][SB3_SAMPLE]))
            for name, s in t["sample"].items()
        ]
    print(
        markdown_table(
            ("capacity", "operation", "µs per call (median)", "vs SB3 uniform sample"), rows, "rlrr"
        )
    )
    rows = []
    for capacity, t in timings.items():
        rows += [
            (f"{capacity:,}", name, f"{np.median(1.0 / s):,.0f}", spread(t["add"][SB3_ADD] / s))
            for name, s in t["add"].items()
        ]
    print()
    print(markdown_table(("capacity", "insertion", "transitions/s (median)", "vs SB3 add"), rows, "rlrr"))
    rows = []
    for capacity, t in timings.items():
        sample, add = t["sample"], t["add"]
        tianshou = spread(sample[TIANSHOU] / sample[OURS]) if TIANSHOU in sample else "not installed"
        rows.append(
            (
                f"{capacity:,}",
                spread(sample[OURS] / sample[SB3_SAMPLE]),
                tianshou,
                spread(add[SB3_ADD] / add[OURS_ADD]),
            )
        )
    header = (
        "capacity",
        "sample + update vs SB3 sample (target <= 1.2x)",
        "speed-up over tianshou (target >= 1.5x)",
        "insertion vs SB3 (target >= 0.7x)",
    )
    print()
    print(markdown_table(header, rows, "rrrr"))
    first_use = record.get("settings", {}).get("first_use_cpu_seconds", {})
    if first_use:
        print()
        print(
            markdown_table(
                ("one-off cost of the compiled tree, per process", "CPU s"),
                [(name, f"{seconds:.2f}") for name, seconds in first_use.items()],
                "lr",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--capacities", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--obs-dim", type=int, default=8)
    parser.add_argument("--calls", type=int, default=200, help="calls of each sampling operation per round")
    parser.add_argument("--inserts", type=int, default=2000, help="calls of each add per round")
    parser.add_argument("--rounds", type=int, default=21)
    add_results_argument(parser)
    add_plot_argument(parser, "per_speed")
    args = parser.parse_args()
    th.set_num_threads(1)

    def run(results: Results) -> None:
        for capacity in args.capacities:
            results.add({"capacity": capacity, **measure(capacity, args)})
        results.describe(first_use_cpu_seconds=first_use_seconds())

    record = measure_or_load("per_speed", args, run)
    print_tables(record)
    plot(record, args.plot)


def plot(record: dict, path) -> None:
    """The three targets' ratios, min / median / max over the paired rounds, per capacity."""
    ratios = {}
    for run in record["runs"]:
        capacity = f"{run['capacity']:,}"
        sample = {k: np.asarray(v) for k, v in run["sample"].items()}
        add = {k: np.asarray(v) for k, v in run["add"].items()}
        ratios[f"{capacity}: SB3 sample / ours sample + update"] = sample[SB3_SAMPLE] / sample[OURS]
        if TIANSHOU in sample:
            ratios[f"{capacity}: tianshou / ours, sample + update"] = sample[TIANSHOU] / sample[OURS]
        ratios[f"{capacity}: insertion, ours / SB3 (transitions/s)"] = add[SB3_ADD] / add[OURS_ADD]
    save_ratio_plot(
        path,
        ratios,
        title=f"prioritized replay speed relative to its baselines, {record['args']['rounds']} paired rounds",
        xlabel="speed ratio, > 1: ours faster (bar: median round, whiskers: min and max)",
    )


if __name__ == "__main__":
    main()
