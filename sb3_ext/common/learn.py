"""``learn`` logged under the algorithm's own name.

SB3's algorithms re-declare ``learn`` only to give ``tb_log_name`` their name as its default. The
algorithms of this package built on an SB3 algorithm's training loop take that ``learn`` from
:class:`NamedLearnMixin` instead and say their name once, as :attr:`~NamedLearnMixin.log_name`.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from stable_baselines3.common.type_aliases import MaybeCallback

SelfNamedLearn = TypeVar("SelfNamedLearn", bound="NamedLearnMixin")


class NamedLearnMixin:
    """SB3's ``learn`` with the runs logged under :attr:`log_name` unless ``tb_log_name`` says otherwise.

    Put it before the SB3 base class: ``class AuxDQN(NamedLearnMixin, DQN)``.
    """

    #: The default ``tb_log_name`` of :meth:`learn` (the algorithm's name).
    log_name: ClassVar[str]

    def learn(
        self: SelfNamedLearn,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfNamedLearn:
        """
        Train for ``total_timesteps`` environment steps with the base class's training loop.

        :param total_timesteps: environment steps to train for (summed over environments)
        :param callback: called at every step, as in SB3
        :param log_interval: episodes between two logger dumps
        :param tb_log_name: the run's name in TensorBoard (default: :attr:`log_name`)
        :param reset_num_timesteps: start counting steps (and logging) from 0
        :param progress_bar: show a progress bar (needs ``tqdm`` and ``rich``)
        :return: the trained model
        """
        return super().learn(  # type: ignore[misc]
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=self.log_name if tb_log_name is None else tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
