"""Gymnasium wrappers for sample-efficiency and transfer experiments.

- :class:`DomainRandomization` samples physical parameters per episode.
- :class:`Curriculum` moves between task levels on a window of successes.
- :class:`GoalSchedule` switches grid-world goals between episodes.
- :class:`ObservationNoise` and :class:`RandomShift` augment observations.
- :class:`MaskObservation` hides observation dimensions (partial observability).
- :class:`ActionRepeat` applies each action for several environment steps (frame skip).

Like the environments, they depend on gymnasium and numpy only, draw randomness from their own
generator seeded by ``reset(seed=...)``, pickle, and work inside SB3 VecEnvs. The SB3 callback
that logs their state lives in :mod:`sb3_ext` (``WrapperInfoCallback``).
"""

from __future__ import annotations

from gym_advrl.wrappers.action_repeat import ActionRepeat
from gym_advrl.wrappers.curriculum import Curriculum, GoalSchedule
from gym_advrl.wrappers.observation import MaskObservation, ObservationNoise, RandomShift
from gym_advrl.wrappers.randomization import DomainRandomization

__all__ = [
    "ActionRepeat",
    "Curriculum",
    "DomainRandomization",
    "GoalSchedule",
    "MaskObservation",
    "ObservationNoise",
    "RandomShift",
]
