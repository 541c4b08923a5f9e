"""The one mechanism that gives any SB3 off-policy algorithm prioritized replay."""

from __future__ import annotations

import inspect
import io
import pathlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_ext.common.buffers import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from sb3_ext.common.validation import INHERITED_ARGUMENTS, check_algorithm_arguments

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    _Base = OffPolicyAlgorithm
else:
    _Base = object


class PrioritizedReplayMixin(_Base):
    """Prioritized experience replay for an SB3 ``OffPolicyAlgorithm`` subclass.

    Put it first in the bases (``class PERDQN(PrioritizedReplayMixin, DQN)``). It

    * defaults ``replay_buffer_class`` to :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`
      (``replay_buffer_kwargs`` take its ``alpha``, ``beta``, ``final_beta`` and ``eps``) and
      rejects replay buffers that are not prioritized, also in ``load_replay_buffer``;
    * anneals the buffer's ``beta`` with the fraction of ``learn()`` done
      (:meth:`_sample_prioritized`);
    * writes ``|TD error|`` priorities back after each gradient step (:meth:`_update_priorities`)
      and logs ``train/per_beta``, ``train/per_max_priority`` and ``train/per_mean_weight``.

    The algorithm's ``train()`` samples with :meth:`_sample_prioritized`, multiplies each
    transition's critic loss by ``replay_data.weights`` before averaging (:func:`weighted_mean`),
    and hands its TD errors to :meth:`_update_priorities`. That is the whole contract, and what
    ``PERDQN``, ``PERQRDQN``, ``PERSAC`` and ``PERTD3`` implement.
    """

    replay_buffer: PrioritizedReplayBuffer | None  # type: ignore[assignment]
    #: Action spaces the algorithm accepts, checked before SB3's own assertion so that a wrong
    #: env raises ValueError (None leaves the check to SB3).
    _accepted_action_spaces: tuple[type[spaces.Space], ...] | None = None

    def __init__(self, policy: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        accepted, space = self._accepted_action_spaces, getattr(env, "action_space", None)
        if accepted is not None and space is not None and not isinstance(space, accepted):
            names = " or ".join(space_class.__name__ for space_class in accepted)
            raise ValueError(f"env: {type(self).__name__} supports {names} action spaces, got {space}")
        # The algorithm's own signature tells which of the inherited SB3 arguments these are.
        bound = inspect.signature(super().__init__).bind(policy, env, *args, **kwargs)
        bound.apply_defaults()
        check_algorithm_arguments(
            **{name: bound.arguments[name] for name in INHERITED_ARGUMENTS if name in bound.arguments}
        )
        super().__init__(policy, env, *args, **kwargs)

    def _setup_model(self) -> None:
        if self.replay_buffer_class is None:
            self.replay_buffer_class = PrioritizedReplayBuffer
        elif not (
            isinstance(self.replay_buffer_class, type)
            and issubclass(self.replay_buffer_class, PrioritizedReplayBuffer)
        ):
            raise ValueError(
                f"replay_buffer_class must be PrioritizedReplayBuffer or a subclass of it for "
                f"{type(self).__name__}, got {self.replay_buffer_class!r}"
            )
        if getattr(self, "n_steps", 1) != 1:
            raise ValueError(
                f"n_steps must be 1 for {type(self).__name__} (n-step prioritized replay is not supported)"
            )
        super()._setup_model()
        self._per_weights: list[float] = []

    def load_replay_buffer(
        self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True
    ) -> None:
        """Load a pickled :class:`PrioritizedReplayBuffer`, priorities included. A file that
        holds another kind of buffer raises ``ValueError`` and leaves the current buffer in place.

        :param path: Path to the pickled replay buffer.
        :param truncate_last_traj: Only used by SB3's ``HerReplayBuffer``.
        """
        previous = self.replay_buffer
        try:
            super().load_replay_buffer(path, truncate_last_traj)
            if not isinstance(self.replay_buffer, PrioritizedReplayBuffer):
                raise ValueError(
                    f"path: {type(self).__name__} needs a PrioritizedReplayBuffer, the file holds a "
                    f"{type(self.replay_buffer).__name__}"
                )
        except BaseException:
            self.replay_buffer = previous  # a rejected file leaves the model's buffer as it was
            raise

    def _sample_prioritized(self, batch_size: int) -> PrioritizedReplayBufferSamples:
        """Sample a batch with ``beta`` annealed to the current fraction of training done."""
        assert self.replay_buffer is not None
        self.replay_buffer.set_progress(1.0 - self._current_progress_remaining)
        samples = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        self._per_weights.append(float(samples.weights.mean()))
        return samples

    def _update_priorities(self, samples: PrioritizedReplayBufferSamples, td_errors: th.Tensor) -> None:
        """Write ``|td_errors|`` (one per sampled transition) back as priorities."""
        assert self.replay_buffer is not None
        self.replay_buffer.update_priorities(samples.indices, td_errors.detach().reshape(-1))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_per_weights"]

    def _record_prioritized_replay(self) -> None:
        """Log the PER statistics of the last ``train()`` call."""
        assert self.replay_buffer is not None
        self.logger.record("train/per_beta", self.replay_buffer.beta)
        self.logger.record("train/per_max_priority", self.replay_buffer.max_priority)
        if self._per_weights:
            self.logger.record("train/per_mean_weight", float(np.mean(self._per_weights)))
        self._per_weights = []


def weighted_mean(per_sample_loss: th.Tensor, weights: th.Tensor) -> th.Tensor:
    """Importance-weighted batch mean: ``mean_i w_i * loss_i``.

    :param per_sample_loss: One loss per transition, shape ``(batch_size, 1)`` or ``(batch_size,)``.
    :param weights: Importance-sampling weights, shape ``(batch_size, 1)``.
    """
    return (weights.reshape(-1) * per_sample_loss.reshape(-1)).mean()
