"""Evaluation of a multi-agent policy on a PettingZoo parallel environment."""

from __future__ import annotations

from typing import Any

import numpy as np

from sb3_ext.common.validation import check_positive_int


def evaluate_marl_policy(
    model: Any,
    env: Any,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    seed: int | None = None,
    return_episode_rewards: bool = False,
) -> tuple[float, float] | tuple[list[float], list[int], dict[str, list[float]]]:
    """
    Run ``n_eval_episodes`` episodes of ``model.predict`` on a PettingZoo parallel env, like SB3's
    ``evaluate_policy``.

    The team return of an episode is the sum over its steps of the mean reward of the agents that
    acted (for a cooperative env with a shared reward, the shared reward's sum).

    :param model: anything with ``predict(observations_dict, deterministic=...) -> (actions_dict, _)``
    :param env: the PettingZoo ``ParallelEnv``
    :param n_eval_episodes: episodes to run
    :param deterministic: greedy actions
    :param seed: seed of the first episode's reset (the next ones continue its stream)
    :param return_episode_rewards: return the per-episode team returns and lengths and the
        per-agent returns instead of their mean and standard deviation
    :return: ``(mean team return, std)``, or ``(team returns, lengths, {agent: returns})``
    """
    check_positive_int("n_eval_episodes", n_eval_episodes)
    team_returns, lengths = [], []
    agent_returns: dict[str, list[float]] = {name: [] for name in env.possible_agents}
    for episode in range(n_eval_episodes):
        observations, _ = env.reset(seed=seed if episode == 0 else None)
        totals = dict.fromkeys(env.possible_agents, 0.0)
        team, length = 0.0, 0
        while env.agents:
            actions, _ = model.predict(
                {name: observations[name] for name in env.agents}, deterministic=deterministic
            )
            observations, rewards, _, _, _ = env.step(actions)
            team += float(np.mean([rewards[name] for name in actions]))
            for name in actions:
                totals[name] += float(rewards[name])
            length += 1
        team_returns.append(team)
        lengths.append(length)
        for name, total in totals.items():
            agent_returns[name].append(total)
    if return_episode_rewards:
        return team_returns, lengths, agent_returns
    return float(np.mean(team_returns)), float(np.std(team_returns))
