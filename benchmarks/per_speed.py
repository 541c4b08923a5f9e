"""Prioritized replay speed: sample + priority update, and insertion, against SB3 and tianshou.

All buffers hold 1,000,000 transitions (``--obs-dim`` float32 observations, discrete actions)
with random priorities. Measured in the same run, as CPU time of this thread per call (best of
``--repeats`` rounds in which the buffers take turns, so that other processes on a shared machine
distort the figures less):

* SB3 ``ReplayBuffer.sample(256)`` (uniform), the reference;
* ours: ``PrioritizedReplayBuffer.sample(256)`` + ``update_priorities`` of those 256 indices;
* tianshou ``PrioritizedReplayBuffer.sample(256)`` + ``update_weight`` (if tianshou is
  installed; its sample returns numpy arrays, SB3's and ours return torch tensors);
* insertion of single transitions (``add``) into the full buffers, in transitions per second.

    python benchmarks/per_speed.py [--obs-dim 8] [--calls 200] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_ext import PrioritizedReplayBuffer

CAPACITY = 1_000_000
BATCH = 256


def cpu_seconds_per_call(fns: dict[str, Callable[[], object]], calls: int, repeats: int) -> dict[str, float]:
    """Best CPU time per call of each function over ``repeats`` rounds of ``calls`` calls.

    The functions take turns within every round, so that a machine whose speed drifts (other
    processes, shared caches) slows all of them alike instead of whichever ran during the slow spell.
    """
    best = dict.fromkeys(fns, np.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.thread_time()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.thread_time() - start) / calls)
    return best


def fill_sb3(buffer: ReplayBuffer, rng: np.random.Generator) -> None:
    """Fill the arrays directly (a million Python-level ``add`` calls would dominate the run)."""
    buffer.observations[:] = rng.standard_normal(buffer.observations.shape, dtype=np.float32)
    buffer.next_observations[:] = rng.standard_normal(buffer.next_observations.shape, dtype=np.float32)
    buffer.actions[:] = rng.integers(0, 4, buffer.actions.shape)
    buffer.rewards[:] = rng.standard_normal(buffer.rewards.shape, dtype=np.float32)
    buffer.full, buffer.pos = True, 0


def make_tianshou(obs_dim: int, rng: np.random.Generator, priorities: np.ndarray):
    try:
        from tianshou.data import Batch
        from tianshou.data import PrioritizedReplayBuffer as TianshouPER
    except ImportError:
        return None, None
    buffer = TianshouPER(CAPACITY, alpha=0.6, beta=0.4)
    zeros = np.zeros(CAPACITY, dtype=bool)
    buffer.set_batch(
        Batch(
            obs=rng.standard_normal((CAPACITY, obs_dim), dtype=np.float32),
            act=rng.integers(0, 4, CAPACITY),
            rew=rng.standard_normal(CAPACITY, dtype=np.float32),
            terminated=zeros,
            truncated=zeros,
            done=zeros,
            obs_next=rng.standard_normal((CAPACITY, obs_dim), dtype=np.float32),
        )
    )
    buffer._size = CAPACITY
    buffer.weight[np.arange(CAPACITY)] = priorities
    return buffer, Batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obs-dim", type=int, default=8)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--inserts", type=int, default=20_000)
    args = parser.parse_args()
    th.set_num_threads(1)
    rng = np.random.default_rng(0)
    obs_space = spaces.Box(-np.inf, np.inf, (args.obs_dim,), np.float32)
    action_space = spaces.Discrete(4)
    priorities = rng.random(CAPACITY) ** 0.6
    td_errors = rng.standard_normal(BATCH)

    uniform = ReplayBuffer(CAPACITY, obs_space, action_space, device="cpu")
    fill_sb3(uniform, rng)
    ours = PrioritizedReplayBuffer(CAPACITY, obs_space, action_space, device="cpu")
    fill_sb3(ours, rng)
    ours.tree.update(np.arange(CAPACITY), priorities)
    tianshou, Batch = make_tianshou(args.obs_dim, rng, priorities)

    def ours_sample_update() -> None:
        batch = ours.sample(BATCH)
        ours.update_priorities(batch.indices, td_errors)

    def tianshou_sample_update() -> None:
        _, indices = tianshou.sample(BATCH)
        tianshou.update_weight(indices, td_errors)

    operations = {
        "SB3 ReplayBuffer.sample (uniform)": lambda: uniform.sample(BATCH),
        "ours: sample + update_priorities": ours_sample_update,
        "ours: sample only": lambda: ours.sample(BATCH),
    }
    if tianshou is not None:
        operations["tianshou: sample + update_weight"] = tianshou_sample_update
    timings = cpu_seconds_per_call(operations, args.calls, args.repeats)

    # Insertion: single transitions into the full buffers (wrapping around), best of the repeats.
    obs = rng.standard_normal((1, args.obs_dim), dtype=np.float32)
    action, reward, done, infos = np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}]
    inserts = {
        "SB3 ReplayBuffer.add": lambda: uniform.add(obs, obs, action, reward, done, infos),
        "ours: add": lambda: ours.add(obs, obs, action, reward, done, infos),
    }
    if tianshou is not None:
        transition = Batch(obs=obs[0], act=0, rew=0.0, terminated=False, truncated=False, obs_next=obs[0], info={})
        inserts["tianshou: add"] = lambda: tianshou.add(transition)
    rates = {name: 1.0 / seconds for name, seconds in cpu_seconds_per_call(inserts, args.inserts // 5, 5).items()}

    reference = timings["SB3 ReplayBuffer.sample (uniform)"]
    print(f"capacity {CAPACITY:,}, batch {BATCH}, obs {args.obs_dim} float32; CPU time per call, best of {args.repeats} x {args.calls}\n")
    print("| operation | µs per call | vs SB3 uniform sample |")
    print("|---|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds * 1e6:.0f} | {seconds / reference:.2f}x |")
    print("\n| insertion | transitions/s | vs SB3 |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / rates['SB3 ReplayBuffer.add']:.2f}x |")

    ours_time = timings["ours: sample + update_priorities"]
    print("\ntargets:")
    print(f"- sample + update <= 1.5x SB3 uniform sample: {ours_time / reference:.2f}x")
    if tianshou is not None:
        speedup = timings["tianshou: sample + update_weight"] / ours_time
        print(f"- >= 1.4x faster than tianshou: {speedup:.2f}x")
    else:
        print("- tianshou: not installed, not measured")
    print(f"- insertion >= 0.5x SB3: {rates['ours: add'] / rates['SB3 ReplayBuffer.add']:.2f}x")


if __name__ == "__main__":
    main()
