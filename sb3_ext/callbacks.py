"""SB3 callbacks for the gym_advrl wrappers."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class WrapperInfoCallback(BaseCallback):
    """Logs the state of the :mod:`gym_advrl.wrappers` to the SB3 logger (and so to TensorBoard).

    At the end of every episode, in every env of the VecEnv, it reads the final ``info`` that
    the wrappers fill in and records, averaged over the episodes between two logger dumps
    (``logger.record_mean``):

    * ``curriculum/level``: ``Curriculum``, the level of the finished episodes;
    * ``curriculum/success``: ``Curriculum``, the fraction judged successful;
    * ``curriculum/success_rate``: ``Curriculum``, the success rate over its window;
    * ``physics/<name>``: ``DomainRandomization``, each sampled parameter;
    * ``goal/index``: ``GoalSchedule``, the index of the scheduled goal.

    Keys only appear when the matching wrapper is in the env stack, so the callback can be
    passed to any ``learn`` call. Works with ``DummyVecEnv`` and ``SubprocVecEnv`` alike, since it
    only reads ``infos``.

    Example:
        >>> from stable_baselines3 import SAC  # doctest: +SKIP
        >>> model = SAC("MlpPolicy", vec_env, tensorboard_log="runs")  # doctest: +SKIP
        >>> model.learn(10_000, callback=WrapperInfoCallback())  # doctest: +SKIP

    :param verbose: verbosity level (0: nothing printed, 1: print level changes).
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._last_levels: dict[int, int] = {}

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", ())
        dones = self.locals.get("dones")
        if dones is None:
            return True
        for env_index, (info, done) in enumerate(zip(infos, dones, strict=False)):
            if not done:
                continue
            if "curriculum_level" in info:
                level = int(info["curriculum_level"])
                self.logger.record_mean("curriculum/level", level)
                if self.verbose >= 1 and self._last_levels.get(env_index, level) != level:
                    print(f"env {env_index}: curriculum level {self._last_levels[env_index]} -> {level}")
                self._last_levels[env_index] = level
            if "curriculum_success" in info:
                self.logger.record_mean("curriculum/success", float(info["curriculum_success"]))
                self.logger.record_mean("curriculum/success_rate", float(info["curriculum_success_rate"]))
            for name, value in info.get("randomized_physics", {}).items():
                self.logger.record_mean(f"physics/{name}", float(value))
            if "goal_index" in info:
                self.logger.record_mean("goal/index", int(info["goal_index"]))
        return True
