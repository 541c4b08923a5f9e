"""Multi-agent particle environments in PettingZoo's module style.

``cooperative_v0``, ``competitive_v0`` and ``mixed_v0`` each expose ``env(**kwargs)`` (AEC API,
order-enforced), ``raw_env`` and ``parallel_env`` on one shared, vectorized particle world.
"""

from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0

__all__ = ["competitive_v0", "cooperative_v0", "mixed_v0"]
