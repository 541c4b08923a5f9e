"""Shared fixtures: every registered ``AdvRL/`` id, so a new env is covered by registering it."""

from __future__ import annotations

import os

# render_mode="human" opens pygame windows; the dummy video driver runs them headless.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Each pytest-xdist worker gets one core: small batched products are slower with two threads.
torch.set_num_threads(1)

# The first optimizer a process builds imports torch._dynamo (several seconds of CPU). Imported
# here, at collection, it is paid once per session, and the processes that mutation testing forks
# from a collected session (one per mutant) inherit it instead of paying it again.
import torch._dynamo  # noqa: E402, F401

import gym_advrl  # noqa: E402, F401  (registers the AdvRL/ ids)

ADVRL_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("AdvRL/"))

# Hypothesis profiles for the property-based suites (tests/test_fuzz.py). "default" (and "ci",
# the same examples every run) keep the suite to 100 examples per test (about 15 s); "long" explores
# deeper: pytest --hypothesis-profile=long tests/test_fuzz.py (or HYPOTHESIS_PROFILE=long).
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("default", max_examples=100, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, suppress_health_check=_SLOW_OK
)
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
