"""Evaluation of a multi-agent policy on a PettingZoo parallel environment."""

from __future__ import annotations

from collections.abc import Callable
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
    opponent: Callable[[str, np.ndarray], Any] | None = None,
) -> tuple[float, float] | tuple[list[float], list[int], dict[str, list[float]]]:
    """
    Run ``n_eval_episodes`` episodes of ``model.predict`` on a PettingZoo parallel env, like SB3's
    ``evaluate_policy``.

    The team return of an episode is the sum over its steps of the mean reward of the model's
    agents that acted (for a cooperative env with a shared reward, the shared reward's sum). The
    agents the model does not control (``model.agents``) act by ``opponent``, else by the model's
    own ``opponent_action``.

    :param model: anything with ``predict(observations_dict, deterministic=...) -> (actions_dict, _)``
    :param env: the PettingZoo ``ParallelEnv``
    :param n_eval_episodes: episodes to run
    :param deterministic: greedy actions
    :param seed: seed of the first episode's reset (the next ones continue its stream)
    :param return_episode_rewards: return the per-episode team returns and lengths and every
        agent's returns instead of their mean and standard deviation
    :param opponent: ``opponent(agent, observation) -> action`` for the agents the model does not control
    :return: ``(mean team return, std)``, or ``(team returns, lengths, {agent: returns})``
    """
    check_positive_int("n_eval_episodes", n_eval_episodes)
    controlled = getattr(model, "agent_index", None)
    act_for_others = opponent or getattr(model, "opponent_action", None)
    if controlled is not None and set(env.possible_agents) - set(controlled) and act_for_others is None:
        raise ValueError(
            "opponent: the model does not control every agent; pass opponent(agent, observation)"
        )
    team_returns, lengths = [], []
    agent_returns: dict[str, list[float]] = {name: [] for name in env.possible_agents}
    for episode in range(n_eval_episodes):
        observations, _ = env.reset(seed=seed if episode == 0 else None)
        totals = dict.fromkeys(env.possible_agents, 0.0)
        team, length = 0.0, 0
        carried = None  # predict's state (the agents' messages, for communicating agents)
        while env.agents:
            mine = {
                name: observations[name] for name in env.agents if controlled is None or name in controlled
            }
            actions, carried = (
                model.predict(mine, state=carried, deterministic=deterministic) if mine else ({}, None)
            )
            others = {
                name: act_for_others(name, observations[name]) for name in env.agents if name not in mine
            }
            observations, rewards, _, _, _ = env.step({**actions, **others})
            if actions:
                team += float(np.mean([rewards[name] for name in actions]))
            for name in [*actions, *others]:
                totals[name] += float(rewards[name])
            length += 1
        team_returns.append(team)
        lengths.append(length)
        for name, total in totals.items():
            agent_returns[name].append(total)
    if return_episode_rewards:
        return team_returns, lengths, agent_returns
    return float(np.mean(team_returns)), float(np.std(team_returns))
