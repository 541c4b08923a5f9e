"""Dyna benchmarks: planning from a model versus learning from real experience only.

1. ``tabular`` -- the Dyna maze of Sutton & Barto (2018, Example 8.1, Figure 8.2), built from
   ``AdvRL/GridWorld-v0`` with walls (the 6x9 layout, gamma 0.95, alpha 0.1, epsilon 0.1, Q
   initialized to 0, no step limit), with GridWorld's rewards (-0.1 a step, +10 at the goal)
   and with the book's (0 a step, 1 at the goal). TabularDynaQ with 50 and 5 planning steps
   against plain Q-learning (0 planning steps, otherwise identical): the number of episodes
   until the greedy path from the start is a shortest path for the first time, and until it
   stays one to the end of the run.
2. ``deep`` -- Dyna (DQN + learned ensemble model) against SB3 DQN with the same
   hyperparameters on ``AdvRL/GridWorld-v0`` size 8 with coordinate observations: environment
   steps until the deterministic policy reaches the optimal return.

    python benchmarks/dyna.py tabular [--seeds 10] [--episodes 150] [--reward gridworld|classic|both]
    python benchmarks/dyna.py deep [--seeds 5] [--first-seed 0] [--budget 20000] [--eval-freq 250] [--stable-evals 1]

   ``--true-model reward termination state`` (any of them) is a diagnostic: Dyna imagines with
   GridWorld's true reward / termination / next cell in place of the learned model's, to measure
   what each learned part costs.
   ``--model-report`` is another: after every model fit it prints the model's reward and
   termination for the steps into the goal and for all other state-action pairs, the exploration
   bonus (if any), and the Q-network's largest and mean values and its largest on the goal cell.
   ``--imagined-actions``, ``--nll-beta``, ``--exploration-bonus`` and ``--planning-gamma`` set
   Dyna's arguments of those names, ``--model-mean`` imagines with member means
   (``model_noise=False``), ``--model-hidden-sizes`` sets the hidden layers of each ensemble member.
   The best setting measured is ``--exploration-bonus 3 --planning-gamma 0.95 --model-mean``.
   ``--stable-evals K`` counts a run as solved only once K evaluations in a row earn the optimal
   return (at the first of them); with ``--eval-freq 50 --stable-evals 5`` the greedy policy has
   to stay optimal for 200 steps.
"""

from __future__ import annotations

import argparse
from collections import deque

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.grid_world import DYNA_MAZE
from sb3_ext.dyna import Dyna, TabularDynaQ
from sb3_ext.dyna.dyna import IMAGINED_ACTIONS


def shortest_path_length(env: gym.Env) -> int:
    """Breadth-first search from the start to the goal of a deterministic GridWorld."""
    grid = env.unwrapped
    dist = {grid.start: 0}
    frontier = deque([grid.start])
    moves = ((-1, 0), (0, 1), (1, 0), (0, -1))
    while frontier:
        cell = frontier.popleft()
        if cell == grid.goal:
            return dist[cell]
        for dr, dc in moves:
            nxt = (cell[0] + dr, cell[1] + dc)
            if (
                0 <= nxt[0] < grid.rows
                and 0 <= nxt[1] < grid.cols
                and not grid.walls[nxt]
                and nxt not in dist
            ):
                dist[nxt] = dist[cell] + 1
                frontier.append(nxt)
    raise ValueError("the goal is unreachable from the start")


def greedy_steps_to_goal(model, env: gym.Env, max_steps: int) -> int | None:
    """Steps the deterministic policy takes from the start to the goal, None if it never arrives."""
    obs, _ = env.reset()
    for step in range(1, max_steps + 1):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated:
            return step
        if truncated:
            return None
    return None


class GreedyPathEveryEpisode(BaseCallback):
    """After every training episode, record whether the greedy path is a shortest path; stop after
    ``n_episodes`` episodes."""

    def __init__(self, eval_env: gym.Env, optimal_steps: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_env, self.optimal_steps, self.n_episodes = eval_env, optimal_steps, n_episodes
        self.optimal: list[bool] = []
        self.episode_lengths: list[int] = []
        self._length = 0

    def _on_step(self) -> bool:
        self._length += 1
        if self.locals["dones"][0]:
            steps = greedy_steps_to_goal(self.model, self.eval_env, 4 * self.optimal_steps)
            self.optimal.append(steps == self.optimal_steps)
            self.episode_lengths.append(self._length)
            self._length = 0
        return len(self.optimal) < self.n_episodes


def first_optimal_episode(optimal: list[bool]) -> int | None:
    """First episode (1-based) after which the greedy path is optimal, None if never."""
    return optimal.index(True) + 1 if True in optimal else None


def stays_optimal_episode(optimal: list[bool]) -> int | None:
    """First episode (1-based) after which the greedy path is optimal for the rest of the run."""
    if not optimal or not optimal[-1]:
        return None
    last_bad = max((i for i, ok in enumerate(optimal) if not ok), default=-1)
    return last_bad + 2


#: Reward schemes of the maze: GridWorld's own (-0.1 a step, +10 at the goal) and Sutton & Barto's.
REWARDS = {"gridworld": (-0.1, 10.0), "classic": (0.0, 1.0)}


def run_tabular(seeds: int, n_episodes: int, planning: tuple[int, ...], reward: str) -> None:
    step_reward, goal_reward = REWARDS[reward]
    maze = {"layout": DYNA_MAZE, "obs_mode": "index", "step_reward": step_reward, "goal_reward": goal_reward}
    optimal_steps = shortest_path_length(gym.make("AdvRL/GridWorld-v0", **maze))
    first: dict[int, list[int | None]] = {n: [] for n in planning}
    stays: dict[int, list[int | None]] = {n: [] for n in planning}
    for n in planning:
        for seed in range(seeds):
            env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=1_000_000, **maze)
            eval_env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=4 * optimal_steps, **maze)
            model = TabularDynaQ(
                "TabularPolicy", env, learning_rate=0.1, gamma=0.95, planning_steps=n, seed=seed
            )
            callback = GreedyPathEveryEpisode(eval_env, optimal_steps, n_episodes)
            model.learn(100_000_000, callback=callback)
            first[n].append(first_optimal_episode(callback.optimal))
            stays[n].append(stays_optimal_episode(callback.optimal))

    def median(values: list[int | None]) -> float:
        # Runs that never get there count as "later than the last episode" (the median is robust to that).
        return float(np.median([v if v is not None else np.inf for v in values]))

    def summary(values: list[int | None]) -> str:
        done = [v for v in values if v is not None]
        middle = median(values)
        text = f"{middle:g}" if np.isfinite(middle) else f"> {n_episodes}"
        text = f"{text} (mean {np.mean(done):.1f})" if done else "never"
        return text + ("" if len(done) == len(values) else f", {len(values) - len(done)}/{len(values)} never")

    print(
        f"\nDyna maze (Sutton & Barto Fig. 8.2), reward {step_reward:g} a step and {goal_reward:g} at the goal, "
        f"shortest path {optimal_steps} steps, {seeds} seeds, {n_episodes} episodes; median over seeds "
        "(mean over the runs that got there)\n"
    )
    print(
        "| agent | planning steps n | episodes until the greedy path is optimal "
        "| episodes until it stays optimal to the end |"
    )
    print("|---|---:|---:|---:|")
    for n in planning:
        name = "Q-learning" if n == 0 else "Dyna-Q"
        print(f"| {name} | {n} | {summary(first[n])} | {summary(stays[n])} |")
    if 0 in planning and np.isfinite(median(first[0])):
        for n in planning:
            if n and np.isfinite(median(first[n])):
                ratio = median(first[0]) / median(first[n])
                print(
                    f"\nn={n}: {ratio:.1f}x fewer episodes than Q-learning (medians) until the greedy path is optimal"
                )


#: Hyperparameters shared by DQN and Dyna in the deep benchmark.
DQN_HYPERPARAMETERS = dict(
    learning_rate=1e-3,
    buffer_size=50_000,
    learning_starts=500,
    batch_size=64,
    train_freq=4,
    gradient_steps=1,
    target_update_interval=250,
    exploration_fraction=0.3,
    exploration_final_eps=0.05,
    gamma=0.99,
    policy_kwargs=dict(net_arch=[64, 64]),
    device="cpu",
)
#: Dyna's own arguments.
DYNA_HYPERPARAMETERS = dict(
    planning_steps=10,
    real_ratio=0.5,
    planning_updates=8,
    model_train_freq=250,
    model_gradient_steps=100,
    model_kwargs=dict(hidden_sizes=(64, 64)),
)


class StopAtOptimalReturn(BaseCallback):
    """Every ``eval_freq`` steps, run the deterministic policy for one episode (the env is
    deterministic); stop training once it has earned ``optimal_return`` at ``stable_evals``
    evaluations in a row, and report the step of the first of them (``stable_evals=1``: the first
    evaluation that earns it). The evaluations draw no random numbers, so they do not change
    training."""

    def __init__(self, eval_env: gym.Env, optimal_return: float, eval_freq: int, stable_evals: int = 1) -> None:
        super().__init__()
        self.eval_env, self.optimal_return, self.eval_freq = eval_env, optimal_return, eval_freq
        self.stable_evals = stable_evals
        self.solved_at: int | None = None
        self._streak_start: int | None = None  # first evaluation of the current optimal run, if any
        self.goal_visits: list[int] = []  # env steps at which a real transition reached the goal

    def _on_step(self) -> bool:
        if np.any(self.locals["rewards"] > 0):
            self.goal_visits.append(self.num_timesteps)
        if self.num_timesteps % self.eval_freq:
            return True
        obs, _ = self.eval_env.reset()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = self.eval_env.step(
                self.model.predict(obs, deterministic=True)[0]
            )
            total, done = total + reward, terminated or truncated
        if total < self.optimal_return - 1e-6:
            self._streak_start = None
            return True
        if self._streak_start is None:
            self._streak_start = self.num_timesteps
        if self.num_timesteps - self._streak_start < (self.stable_evals - 1) * self.eval_freq:
            return True
        self.solved_at = self._streak_start
        return False


#: Parts of the learned model that ``--true-model`` can replace by the environment's own.
TRUE_MODEL_PARTS = ("reward", "termination", "state")


def true_transitions(env: gym.Env) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GridWorld's true next observation, reward and termination of every (row, col, action),
    tabulated by stepping a copy of the (deterministic) env."""
    grid = gym.make("AdvRL/GridWorld-v0", **env.unwrapped.spec.kwargs).unwrapped
    grid.reset()
    shape = (grid.rows, grid.cols, grid.action_space.n)
    true_next, true_reward = torch.zeros(*shape, 2), torch.zeros(shape)
    true_terminated = torch.zeros(shape, dtype=torch.bool)
    for row, col, action in np.ndindex(*shape):
        grid.position = (row, col)
        next_obs, reward, terminated, _, _ = grid.step(action)
        true_next[row, col, action] = torch.as_tensor(next_obs)
        true_reward[row, col, action], true_terminated[row, col, action] = reward, terminated
    return true_next, true_reward, true_terminated


def use_true_model_parts(model: Dyna, env: gym.Env, parts: tuple[str, ...]) -> None:
    """Diagnostic: Dyna's imagined transitions take the named parts from GridWorld's true dynamics
    (the next cell of the observed cell and action, its reward and termination); the rest stays the
    learned model's."""
    true_next, true_reward, true_terminated = true_transitions(env)
    high = torch.tensor(true_reward.shape[:2]) - 1
    learned = model.dynamics_model.sample

    def sample(obs, actions, **kwargs):
        next_obs, reward, terminated = learned(obs, actions, **kwargs)
        cell = torch.minimum(torch.as_tensor(obs).round().long().clamp(min=0), high)
        key = (cell[:, 0], cell[:, 1], torch.as_tensor(actions).long().reshape(-1))
        if "state" in parts:
            next_obs = true_next[key]
        if "termination" in parts:
            terminated = true_terminated[key]
        if "reward" in parts:
            reward = true_reward[key]
        return next_obs, reward, terminated

    model.dynamics_model.sample = sample


def report_model_fits(model: Dyna, env: gym.Env) -> None:
    """Diagnostic: after every model fit, print what the model predicts (means over the members) for
    the state-action pairs that enter the goal and for all others, the exploration bonus (if any),
    and the Q-network's largest and mean values over those pairs and its largest on the goal cell."""
    _, true_reward, _ = true_transitions(env)
    goal_row, goal_col = env.unwrapped.goal
    pairs = torch.cartesian_prod(*(torch.arange(n) for n in true_reward.shape))  # (row, col, action)
    pairs = pairs[(pairs[:, 0] != goal_row) | (pairs[:, 1] != goal_col)]
    obs, actions = pairs[:, :2].float(), pairs[:, 2]
    enters_goal = true_reward[pairs[:, 0], pairs[:, 1], pairs[:, 2]] > 0
    fit = model.train_model

    def train_model():
        stats = fit()
        prediction = model.dynamics_model.predict(obs, actions)
        reward, termination = prediction.reward_mean.mean(0), prediction.termination_prob.mean(0)
        others = reward[~enters_goal]
        buffer = model.replay_buffer
        goal_transitions = int((buffer.rewards[: buffer.buffer_size if buffer.full else buffer.pos] > 0).sum())
        with torch.no_grad():
            q_values = model.q_net(obs)
            goal_cell_q = float(model.q_net(torch.tensor([[goal_row, goal_col]], dtype=torch.float32)).max())
        bonus = ""
        if model.exploration_bonus > 0:
            kappa_d = model.exploration_bonus * model.dynamics_model.disagreement(obs, actions)
            with_bonus = (reward + kappa_d)[~enters_goal]
            bonus = (
                f"; bonus mean {float(kappa_d.mean()):.2f}, largest {float(kappa_d.max()):.2f}; other pairs with "
                f"reward + bonus > 0: {int((with_bonus > 0).sum())} (their mean "
                f"{float(with_bonus[with_bonus > 0].mean()) if (with_bonus > 0).any() else 0.0:.2f}, "
                f"largest {float(with_bonus.max()):.2f})"
            )
        print(
            f"  step {model.num_timesteps}: {goal_transitions} goal transitions; pairs entering the goal: "
            f"reward {', '.join(f'{r:.2f}' for r in reward[enters_goal])}, "
            f"termination {', '.join(f'{p:.2f}' for p in termination[enters_goal])}; other pairs: "
            f"{int((others > 0).sum())} of {others.numel()} with reward > 0 (largest {float(others.max()):.2f}), "
            f"termination up to {float(termination[~enters_goal].max()):.2f}{bonus}; largest Q {float(q_values.max()):.1f}, "
            f"mean Q {float(q_values.mean()):.1f}, largest Q on the goal cell (never an observation) {goal_cell_q:.1f}",
            flush=True,
        )
        return stats

    model.train_model = train_model


def run_deep(
    seeds: int,
    budget: int,
    eval_freq: int,
    shared: dict,
    dyna: dict,
    which: list[str] = ("DQN", "Dyna"),
    true_model: tuple[str, ...] = (),
    model_report: bool = False,
    first_seed: int = 0,
    stable_evals: int = 1,
) -> None:
    env_kwargs = {"size": 8}
    probe = gym.make("AdvRL/GridWorld-v0", **env_kwargs).unwrapped
    optimal_steps = shortest_path_length(probe)
    optimal_return = (optimal_steps - 1) * probe.step_reward + probe.goal_reward
    hyperparameters = {**DQN_HYPERPARAMETERS, **shared}
    agents = {"DQN (SB3)": (DQN, {}), "Dyna": (Dyna, {**DYNA_HYPERPARAMETERS, **dyna})}
    agents = {name: agent for name, agent in agents.items() if name.split()[0] in which}
    solved: dict[str, list[int | None]] = {name: [] for name in agents}
    for seed in range(first_seed, first_seed + seeds):
        for name, (algo, extra) in agents.items():
            env = gym.make("AdvRL/GridWorld-v0", **env_kwargs)
            model = algo("MlpPolicy", env, seed=seed, **hyperparameters, **extra)
            if true_model and isinstance(model, Dyna):
                use_true_model_parts(model, env, true_model)
            if model_report and isinstance(model, Dyna):
                report_model_fits(model, env)
            callback = StopAtOptimalReturn(
                gym.make("AdvRL/GridWorld-v0", **env_kwargs), optimal_return, eval_freq, stable_evals
            )
            model.learn(budget, callback=callback)
            solved[name].append(callback.solved_at)
            visits = callback.goal_visits
            print(
                f"seed {seed} {name}: solved at {callback.solved_at}; goal reached {len(visits)} times before, "
                f"first at {visits[0] if visits else '-'}, {sum(v <= 1000 for v in visits)} times by step 1000",
                flush=True,
            )

    print(
        f"\nAdvRL/GridWorld-v0 size 8, coordinate observations, optimal return {optimal_return:g}; "
        f"{seeds} seeds ({first_seed}-{first_seed + seeds - 1}), budget {budget} steps, "
        f"deterministic evaluation every {eval_freq} steps"
        + (f", solved when optimal at {stable_evals} evaluations in a row (the first counts)" if stable_evals > 1 else "")
        + "\n"
    )
    print(f"shared: {hyperparameters}\nDyna: { {**DYNA_HYPERPARAMETERS, **dyna} }")
    if true_model:
        print(f"Dyna imagines with GridWorld's true {', '.join(true_model)} (diagnostic)")
    print()
    print("| agent | env steps until the optimal return | runs solved | per seed |")
    print("|---|---:|---:|---|")
    for name, values in solved.items():
        capped = [v if v is not None else budget for v in values]
        per_seed = ", ".join("-" if v is None else str(v) for v in values)
        never = sum(v is None for v in values)
        mean = f"{np.mean(capped):.0f} +- {np.std(capped):.0f}" + (
            f" (unsolved counted as {budget})" if never else ""
        )
        print(f"| {name} | {mean} | {len(values) - never}/{len(values)} | {per_seed} |")
    if len(agents) == 2:
        dqn, dyna = ([v if v is not None else budget for v in solved[k]] for k in agents)
        print(f"\nDyna needs {np.mean(dqn) / np.mean(dyna):.1f}x fewer environment steps than DQN (means)")
        print(f"Dyna needs {np.median(dqn) / np.median(dyna):.1f}x fewer environment steps than DQN (medians)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part", required=True)
    tab = sub.add_parser("tabular", help="TabularDynaQ vs Q-learning on the Dyna maze")
    tab.add_argument("--seeds", type=int, default=10)
    tab.add_argument("--episodes", type=int, default=150)
    tab.add_argument("--planning", type=int, nargs="+", default=[0, 5, 50])
    tab.add_argument("--reward", choices=[*REWARDS, "both"], default="both")
    deep = sub.add_parser("deep", help="Dyna vs DQN on GridWorld size 8 (coordinates)")
    deep.add_argument("--seeds", type=int, default=5)
    deep.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    deep.add_argument("--budget", type=int, default=20_000)
    deep.add_argument("--eval-freq", type=int, default=250)
    deep.add_argument(
        "--stable-evals",
        type=int,
        default=1,
        help="count a run as solved once this many evaluations in a row earn the optimal return (at the first of them)",
    )
    deep.add_argument("--train-freq", type=int, default=DQN_HYPERPARAMETERS["train_freq"])
    deep.add_argument(
        "--target-update-interval", type=int, default=DQN_HYPERPARAMETERS["target_update_interval"]
    )
    deep.add_argument("--gradient-steps", type=int, default=DQN_HYPERPARAMETERS["gradient_steps"])
    deep.add_argument("--real-ratio", type=float, default=DYNA_HYPERPARAMETERS["real_ratio"])
    deep.add_argument("--planning-steps", type=int, default=DYNA_HYPERPARAMETERS["planning_steps"])
    deep.add_argument(
        "--planning-updates",
        type=int,
        default=DYNA_HYPERPARAMETERS["planning_updates"],
        help="Dyna's Q-learning updates on imagined batches per env step (Dyna-Q's planning updates)",
    )
    deep.add_argument(
        "--planning-target-update-interval",
        type=int,
        default=None,
        help="planning updates between target syncs (default: DQN's updates per target sync)",
    )
    deep.add_argument(
        "--model-gradient-steps", type=int, default=DYNA_HYPERPARAMETERS["model_gradient_steps"]
    )
    deep.add_argument(
        "--rollout-length", type=int, default=1, help="Dyna's model steps per imagined transition"
    )
    deep.add_argument("--model-train-freq", type=int, default=DYNA_HYPERPARAMETERS["model_train_freq"])
    deep.add_argument("--model-buffer-size", type=int, default=20_000, help="Dyna's imagined-transition buffer")
    deep.add_argument(
        "--model-mean", action="store_true", help="imagine with member means (model_noise=False)"
    )
    deep.add_argument("--agents", nargs="+", choices=["DQN", "Dyna"], default=["DQN", "Dyna"])
    deep.add_argument(
        "--true-model",
        nargs="+",
        choices=TRUE_MODEL_PARTS,
        default=[],
        help="diagnostic: imagine with GridWorld's true reward / termination / next cell instead of the learned ones",
    )
    deep.add_argument(
        "--imagined-actions", choices=IMAGINED_ACTIONS, default="uniform", help="actions of Dyna's imagined transitions"
    )
    deep.add_argument(
        "--exploration-bonus",
        type=float,
        default=0.0,
        help="Dyna's exploration_bonus: imagined rewards + this times the ensemble's next-state disagreement",
    )
    deep.add_argument("--planning-gamma", type=float, default=None, help="Dyna's planning_gamma (default: gamma)")
    deep.add_argument("--nll-beta", type=float, default=None, help="beta-NLL exponent of Dyna's model (default: Dyna's 0.5)")
    deep.add_argument(
        "--model-hidden-sizes",
        type=int,
        nargs="+",
        default=list(DYNA_HYPERPARAMETERS["model_kwargs"]["hidden_sizes"]),
        help="hidden layer sizes of each ensemble member",
    )
    deep.add_argument(
        "--model-report",
        action="store_true",
        help="diagnostic: after every model fit, print the model's reward and termination at and away from the goal",
    )
    args = parser.parse_args()
    if args.part == "deep" and args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.part == "deep" and args.stable_evals < 1:
        parser.error(f"--stable-evals must be >= 1, got {args.stable_evals}")
    torch.set_num_threads(1)
    if args.part == "tabular":
        for reward in REWARDS if args.reward == "both" else [args.reward]:
            run_tabular(args.seeds, args.episodes, tuple(args.planning), reward)
    else:
        shared = {
            "train_freq": args.train_freq,
            "gradient_steps": args.gradient_steps,
            "target_update_interval": args.target_update_interval,
        }
        dyna = {
            "real_ratio": args.real_ratio,
            "planning_steps": args.planning_steps,
            "planning_updates": args.planning_updates,
            "planning_target_update_interval": args.planning_target_update_interval,
            "rollout_length": args.rollout_length,
            "model_gradient_steps": args.model_gradient_steps,
            "model_train_freq": args.model_train_freq,
            "model_buffer_size": args.model_buffer_size,
            "model_noise": not args.model_mean,
            "imagined_actions": args.imagined_actions,
            "exploration_bonus": args.exploration_bonus,
            "planning_gamma": args.planning_gamma,
        }
        dyna["model_kwargs"] = {**DYNA_HYPERPARAMETERS["model_kwargs"], "hidden_sizes": tuple(args.model_hidden_sizes)}
        if args.nll_beta is not None:
            dyna["model_kwargs"]["nll_beta"] = args.nll_beta
        run_deep(
            args.seeds,
            args.budget,
            args.eval_freq,
            shared,
            dyna,
            args.agents,
            tuple(args.true_model),
            args.model_report,
            args.first_seed,
            args.stable_evals,
        )


if __name__ == "__main__":
    main()
