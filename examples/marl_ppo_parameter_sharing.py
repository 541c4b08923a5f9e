"""One PPO policy shared by every agent of a particle environment (parameter sharing).

    pip install -e ".[sb3,marl-train]"
    python examples/marl_ppo_parameter_sharing.py --env cooperative --timesteps 300000

SuperSuit turns the PettingZoo parallel env into a Stable-Baselines3 VecEnv in which every agent
is one sub-environment, so a single SB3 ``PPO("MlpPolicy", ...)`` learns from all agents' data:

* ``black_death_v3`` keeps the set of agents fixed: an agent that left the arena keeps
  receiving a zero observation and a zero reward until the episode ends;
* ``pettingzoo_env_to_vec_env_v1`` makes one vector env whose sub-envs are the agents;
* ``concat_vec_envs_v1`` stacks ``--n-envs`` copies of it and wraps them for SB3.

SuperSuit 3.11's ``black_death_v3`` reports the end of an episode one step late (it combines
terminations and truncations with ``and``; fixed upstream in Farama-Foundation/SuperSuit#265):
after the last real step comes one extra transition with zero observations and zero reward.
Our envs answer the ``step({})`` that this extra step makes, so training is unaffected apart
from that transition.

The script trains, then compares the mean team return of the trained policy (deterministic
actions) with that of uniformly random actions on the same evaluation episodes.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import supersuit as ss
import torch
from pettingzoo import ParallelEnv
from stable_baselines3 import PPO
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0

ENVS = {"cooperative": cooperative_v0, "competitive": competitive_v0, "mixed": mixed_v0}

#: ``policy(observations (k, obs_dim), agent names) -> actions (k, ...)`` for the k agents in play.
Policy = Callable[[np.ndarray, list[str]], np.ndarray]


def make_parallel_env(env_name: str, n_agents: int, continuous: bool, max_cycles: int) -> ParallelEnv:
    return ENVS[env_name].parallel_env(
        n_agents=n_agents, continuous_actions=continuous, max_cycles=max_cycles
    )


def make_vec_env(env: ParallelEnv, n_envs: int, seed: int) -> VecEnv:
    """SuperSuit pipeline: fixed agent set, one sub-env per agent, ``n_envs`` copies, SB3 VecEnv."""
    env = ss.black_death_v3(env)
    vec_env = ss.pettingzoo_env_to_vec_env_v1(env)
    vec_env = ss.concat_vec_envs_v1(vec_env, n_envs, num_cpus=0, base_class="stable_baselines3")
    # Seed every copy once (copy i gets seed + i); later resets continue each copy's stream.
    vec_env.venv.reset(seed=seed)
    with warnings.catch_warnings():
        # SuperSuit's VecEnv does not answer get_attr("render_mode"); SB3 then warns and uses None,
        # which is right here: the training envs are never rendered.
        warnings.filterwarnings("ignore", message="The `render_mode` attribute is not defined")
        return VecMonitor(vec_env)


def team_returns(env: ParallelEnv, policy: Policy, episodes: int, seed: int) -> np.ndarray:
    """Return of each episode: the per-step mean reward of the agents in play, summed over steps."""
    returns = np.zeros(episodes)
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed + episode)
        while env.agents:
            agents = list(env.agents)
            actions = policy(np.stack([observations[a] for a in agents]), agents)
            observations, rewards, _, _, _ = env.step(dict(zip(agents, actions, strict=True)))
            returns[episode] += np.mean([rewards[a] for a in agents])
    return returns


def random_policy(env: ParallelEnv, seed: int) -> Policy:
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + i)
    return lambda observations, agents: [env.action_space(a).sample() for a in agents]


def ppo_policy(model: PPO) -> Policy:
    return lambda observations, agents: model.predict(observations, deterministic=True)[0]


def train(args: argparse.Namespace) -> tuple[PPO, float]:
    env = make_parallel_env(args.env, args.n_agents, not args.discrete, args.max_cycles)
    vec_env = make_vec_env(env, args.n_envs, args.seed)
    # SuperSuit's VecEnv has no ``seed()``, which ``PPO(seed=...)`` would call: seed the libraries
    # here and the envs in ``make_vec_env``.
    set_random_seed(args.seed)
    model = PPO(
        "MlpPolicy",
        vec_env,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        gamma=0.99,
        verbose=args.verbose,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps, progress_bar=True)
    return model, time.perf_counter() - start


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", choices=sorted(ENVS), default="cooperative")
    parser.add_argument("--n-agents", type=int, default=3)
    parser.add_argument(
        "--discrete", action="store_true", help="Discrete(5) actions instead of Box(-1, 1, (2,))"
    )
    parser.add_argument("--max-cycles", type=int, default=200)
    parser.add_argument("--timesteps", type=int, default=300_000, help="training budget in agent-steps")
    parser.add_argument(
        "--n-envs", type=int, default=8, help="copies of the env (each holds n_agents sub-envs)"
    )
    parser.add_argument("--n-steps", type=int, default=128, help="PPO rollout length per sub-env")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    model, seconds = train(args)
    eval_env = make_parallel_env(args.env, args.n_agents, not args.discrete, args.max_cycles)
    eval_seed = 10_000 + args.seed  # evaluation episodes differ from the training seeds
    trained = team_returns(eval_env, ppo_policy(model), args.eval_episodes, eval_seed)
    random = team_returns(eval_env, random_policy(eval_env, eval_seed), args.eval_episodes, eval_seed)
    result = {"ppo": float(trained.mean()), "random": float(random.mean()), "train_seconds": seconds}
    print(
        f"{args.env}_v0, {args.n_agents} agents, {args.timesteps} agent-steps, seed {args.seed}: "
        f"mean team return PPO {trained.mean():.2f} +- {trained.std():.2f}, "
        f"random {random.mean():.2f} +- {random.std():.2f} ({args.eval_episodes} episodes; trained in {seconds:.0f} s)"
    )
    return result


if __name__ == "__main__":
    main()
