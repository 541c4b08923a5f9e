"""Long runs: 20,000 random steps of every env keep memory flat and the cost of a step constant."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0
from tests.conftest import ADVRL_IDS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the RSS from /proc")

WARMUP = 2_000
CHUNK = 2_000
N_CHUNKS = 10  # 20,000 measured steps
MAX_RSS_GROWTH = 5 * 2**20
#: The last chunks may be this much slower than the first ones (a generous factor: the machine is shared).
MAX_SLOWDOWN = 3.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(step: Callable[[int], None], restart: Callable[[], None]) -> tuple[int, list[float]]:
    """Warm up, ``restart()`` (a fresh episode), then run ``step(i)`` 20k times.

    Returns the RSS growth over the 20k steps and the CPU time of each 2k chunk.
    """
    for i in range(WARMUP):
        step(i)
    restart()
    gc.collect()
    before = rss_bytes()
    chunk_times = []
    for chunk in range(N_CHUNKS):
        start = time.process_time()
        for i in range(chunk * CHUNK, (chunk + 1) * CHUNK):
            step(i)
        chunk_times.append(time.process_time() - start)
    gc.collect()
    return rss_bytes() - before, chunk_times


def assert_flat(growth: int, chunk_times: list[float]) -> None:
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 2**20:.1f} MB over 20k steps"
    first, last = min(chunk_times[:2]), min(chunk_times[-2:])
    assert last < MAX_SLOWDOWN * first + 0.02, (
        f"2k steps took {first:.3f} s at first and {last:.3f} s at the end"
    )


#: Every registered env with its defaults, plus a quantum task that random gates never solve, so
#: that one episode lasts all 20k steps (the circuit, and ``info["gates"]``, keep growing).
CASES = [pytest.param(env_id, {}, id=env_id) for env_id in ADVRL_IDS] + [
    pytest.param(
        "AdvRL/QuantumGate-v0",
        {"n_qubits": 1, "gates": ["x", "z"], "target": "plus"},
        id="quantum-unsolvable",
    )
]


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_random_steps_keep_memory_and_step_cost_flat(env_id: str, kwargs: dict) -> None:
    # The unwrapped env, reset only on termination: no time limit and no truncation, so episodes
    # last as long as the env allows and anything it accumulates within one has the chance to grow.
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(CHUNK)]  # drawn once: sampling is not measured

    def step(i: int) -> None:
        if env.step(actions[i % CHUNK])[2]:
            env.reset()

    growth, chunk_times = measure(step, env.reset)
    assert_flat(growth, chunk_times)


@pytest.mark.parametrize("mod", [cooperative_v0, competitive_v0, mixed_v0])
def test_marl_random_steps_keep_memory_and_step_cost_flat(mod) -> None:
    env = mod.parallel_env(n_agents=4, max_cycles=10**9)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    joint = [{agent: rng.uniform(-1, 1, 2) for agent in env.possible_agents} for _ in range(CHUNK)]

    def step(i: int) -> None:
        if not env.agents:
            env.reset()
        env.step({agent: joint[i % CHUNK][agent] for agent in env.agents})

    growth, chunk_times = measure(step, env.reset)
    assert_flat(growth, chunk_times)
