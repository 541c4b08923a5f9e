"""What the planning (MPC) policies share: the planner chosen by the action space, its generator,
their constructor parameters and the planner's device."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces

from sb3_ext.common.planners import CEM_ARGUMENTS, CEMPlanner, RandomShootingPlanner, SamplingPlanner


def make_planner(action_space: spaces.Space, planner_kwargs: dict[str, Any]) -> SamplingPlanner:
    """:class:`CEMPlanner` for a Box ``action_space`` (all of ``planner_kwargs``),
    :class:`RandomShootingPlanner` for a Discrete one: random shooting refits no distribution, so
    of the CEM arguments it takes the first two (``horizon``, ``population_size``)."""
    if isinstance(action_space, spaces.Box):
        return CEMPlanner(action_space, **planner_kwargs)
    shooting = {key: value for key, value in planner_kwargs.items() if key in CEM_ARGUMENTS[:2]}
    return RandomShootingPlanner(action_space, **shooting)


class PlanningPolicyMixin:
    """Mixin for an SB3 ``BasePolicy`` that plans with a :class:`SamplingPlanner`.

    A subclass lists its own constructor arguments in ``constructor_parameter_names`` (saved and
    restored with the model, SB3's ``_get_constructor_parameters``) and names the module whose
    device the planner follows in ``planner_device`` (``.to(device)`` moves both).
    """

    #: The subclass's own constructor arguments, each stored as an attribute of the same name.
    constructor_parameter_names: ClassVar[tuple[str, ...]] = ()
    planner: SamplingPlanner
    generator: th.Generator

    def _init_planner(self, action_space: spaces.Space, planner_kwargs: dict[str, Any]) -> None:
        """Build the planner, and its generator seeded from torch's global one (which SB3 seeds in
        ``set_random_seed``)."""
        self.planner = make_planner(action_space, planner_kwargs)
        self.generator = th.Generator().manual_seed(int(th.randint(2**62, (1,)).item()))

    @property
    def planner_device(self) -> th.device:
        raise NotImplementedError

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update({name: getattr(self, name) for name in self.constructor_parameter_names})
        return data

    def _apply(self, fn, recurse: bool = True):  # keep the planner on the module's device
        module = super()._apply(fn, recurse)  # type: ignore[misc]
        self.planner.to(self.planner_device)
        return module
