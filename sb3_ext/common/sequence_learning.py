"""The training loop of the algorithms that learn from replayed sequences at a ``train_ratio``.

``Dreamer`` and ``LatentMPC`` collect environment steps with SB3's off-policy loop into a
:class:`~sb3_ext.common.sequence_buffer.SequenceReplayBuffer` and, after each collection, make as
many updates as keep ``replayed steps / environment steps`` at ``train_ratio`` (DreamerV3's knob):
each update replays ``batch_size * sequence_length`` steps, and the fraction of an update left
over is carried to the next collection.
"""

from __future__ import annotations

import io
import pathlib
from typing import Any, ClassVar, TypeVar

import numpy as np
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_ext.common.encoders import check_observation_space
from sb3_ext.common.sequence_buffer import SequenceReplayBuffer, check_sequence_length
from sb3_ext.common.validation import check_float
from sb3_ext.common.world_model import action_vector_size

SelfTrainRatio = TypeVar("SelfTrainRatio", bound="TrainRatioMixin")


class TrainRatioMixin:
    """``learn`` and ``train`` for an SB3 ``OffPolicyAlgorithm`` with a sequence replay buffer.

    Put it before the SB3 base class: ``class Dreamer(TrainRatioMixin, OffPolicyAlgorithm)``. The
    algorithm defines :attr:`log_name`, calls :meth:`_set_train_ratio` in its constructor before the
    base class's and :meth:`_check_world_model_spaces` after it, and implements ``update(batch)``:
    one gradient update on a sampled batch, returning the values to log under ``train/``.
    """

    #: The default ``tb_log_name`` of :meth:`learn` (the algorithm's name).
    log_name: ClassVar[str]

    def _set_train_ratio(self, sequence_length: Any, train_ratio: Any) -> None:
        """Check and set ``sequence_length`` (>= 2) and ``train_ratio`` (> 0); no update is owed yet."""
        model: Any = self
        model.sequence_length = check_sequence_length(sequence_length)
        model.train_ratio = check_float("train_ratio", train_ratio, 0.0, low_inclusive=False)
        model._update_credit = 0.0

    def _check_world_model_spaces(self) -> None:
        """Refuse, once the env is set, the observation and action spaces the world model cannot take."""
        model: Any = self
        if model.env is not None:
            check_observation_space(model.observation_space)
            action_vector_size(model.action_space)

    def learn(
        self: SelfTrainRatio,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfTrainRatio:
        """
        Collect ``total_timesteps`` environment steps (summed over environments), updating after
        each ``train_freq`` steps as many times as ``train_ratio`` asks for.

        :param total_timesteps: environment steps to train for
        :param callback: called at every step, as in SB3
        :param log_interval: episodes between two logger dumps
        :param tb_log_name: the run's name in TensorBoard (default: :attr:`log_name`)
        :param reset_num_timesteps: start counting steps (and logging) from 0
        :param progress_bar: show a progress bar (needs ``tqdm`` and ``rich``)
        :return: the trained model
        """
        model: Any = self
        total_timesteps, callback = model._setup_learn(
            total_timesteps,
            callback,
            reset_num_timesteps,
            self.log_name if tb_log_name is None else tb_log_name,
            progress_bar,
        )
        callback.on_training_start(locals(), globals())
        assert model.env is not None
        replayed_per_update = model.batch_size * model.sequence_length
        while model.num_timesteps < total_timesteps:
            rollout = model.collect_rollouts(
                model.env,
                train_freq=model.train_freq,
                callback=callback,
                action_noise=model.action_noise,
                learning_starts=model.learning_starts,
                replay_buffer=model.replay_buffer,
                log_interval=log_interval,
            )
            if not rollout.continue_training:
                break
            if model.num_timesteps > model.learning_starts and model.replay_buffer.can_sample(
                model.sequence_length
            ):
                model._update_credit += rollout.episode_timesteps * model.train_ratio / replayed_per_update
                n_updates = int(model._update_credit)
                if n_updates > 0:
                    model._update_credit -= n_updates
                    model.train(gradient_steps=n_updates, batch_size=model.batch_size)
        callback.on_training_end()
        return self

    def load_replay_buffer(
        self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True
    ) -> None:
        """
        Load a :class:`~sb3_ext.common.sequence_buffer.SequenceReplayBuffer` saved by
        ``save_replay_buffer`` (SB3's own method insists on its ``ReplayBuffer`` class). The next
        ``learn`` starts a new episode in every stream, so a window never joins the saved steps
        to the new ones without ``is_first``.

        :param path: the pickle file (``.pkl`` is added when missing)
        :param truncate_last_traj: accepted for SB3's signature; sequences need no truncation
        """
        model: Any = self
        buffer = load_from_pkl(path, model.verbose)
        if not isinstance(buffer, SequenceReplayBuffer):
            raise ValueError(
                f"path must hold a SequenceReplayBuffer (saved by {type(self).__name__}."
                f"save_replay_buffer), got a {type(buffer).__name__}"
            )
        buffer.device = model.device
        buffer.start_new_episodes()
        model.replay_buffer = buffer

    def train(self, gradient_steps: int, batch_size: int = 16) -> None:
        """``gradient_steps`` calls of ``update`` on replayed sequences; their mean values are logged."""
        model: Any = self
        model.policy.set_training_mode(True)
        model._update_learning_rate(model.policy.optimizer)
        logs: dict[str, list[float]] = {}
        for _ in range(gradient_steps):
            batch = model.replay_buffer.sample(batch_size, model.sequence_length)
            for name, value in model.update(batch).items():
                logs.setdefault(name, []).append(value)
            model._n_updates += 1
        model.policy.set_training_mode(False)
        for name, values in logs.items():
            model.logger.record(f"train/{name}", float(np.mean(values)))
        model.logger.record("train/n_updates", model._n_updates, exclude="tensorboard")
