r"""Open-loop prediction strip of a latent world model on the pendulum seen through 64x64 frames.

Learns a world model from pixels alone (``LatentMPC``'s: RSSM, CNN encoder and decoder, reward and
continuation heads) on ``--timesteps`` steps of random actions with ``--updates`` gradient steps,
or loads a saved ``LatentMPC`` / ``Dreamer`` (``--load``), then writes a PNG: the real frames of a
new episode on the top row, the model's predictions 1..``--horizon`` steps ahead (from the same
start, under the same actions, after ``--context`` observed frames) on the bottom row; and a GIF
(real | predicted) when imageio is installed (``pip install "gym-advrl[gif]"``).

    python examples/prediction_strip.py [--timesteps 5000] [--updates 1500] [--out runs/strip]
    python examples/prediction_strip.py --updates 1000 --batch-size 8 --sequence-length 32 \
        --model-width 128 --cnn-depth 8 --out docs/images   # the docs' picture
    python examples/prediction_strip.py --load runs/dreamer_pixels.zip --algo Dreamer
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import AddRenderObservation
from tqdm.auto import trange

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext import Dreamer, LatentMPC
from sb3_ext.common.prediction_strip import collect_prediction, save_prediction_strip


def pixel_env(size: int) -> gym.Env:
    """The pendulum observed through ``size`` x ``size`` RGB frames only (the docs' recipe)."""
    env = gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=size, height=size)
    return AddRenderObservation(env, render_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=5_000, help="random-action steps to learn from")
    parser.add_argument("--updates", type=int, default=1_500, help="world-model gradient steps")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per update")
    parser.add_argument("--sequence-length", type=int, default=50, help="steps per sequence")
    parser.add_argument(
        "--model-width", type=int, default=256, help="GRU state, MLP and embedding sizes of the world model"
    )
    parser.add_argument("--cnn-depth", type=int, default=16, help="channels of the first convolution")
    parser.add_argument("--horizon", type=int, default=30, help="steps predicted ahead")
    parser.add_argument("--context", type=int, default=5, help="frames observed before predicting")
    parser.add_argument(
        "--load", default=None, help="a saved LatentMPC or Dreamer (.zip) instead of learning"
    )
    parser.add_argument("--algo", choices=("LatentMPC", "Dreamer"), default="LatentMPC")
    parser.add_argument("--save", default=None, help="save the learned LatentMPC here (.zip)")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="torch threads (small convolutions: 1 is fastest)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/strip", help="directory of prediction_strip.png (and .gif)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    if args.load is not None:
        model = {"LatentMPC": LatentMPC, "Dreamer": Dreamer}[args.algo].load(args.load, device="cpu")
    else:
        model = LatentMPC(
            "CnnPolicy",
            pixel_env(args.size),
            learning_starts=args.timesteps,  # random actions only: this example learns the model
            batch_size=args.batch_size,
            sequence_length=args.sequence_length,
            buffer_size=max(args.timesteps, 100),
            seed=args.seed,
            device="cpu",
            policy_kwargs=dict(
                world_model_kwargs=dict(
                    deter_size=args.model_width,
                    hidden_size=args.model_width,
                    embed_dim=args.model_width,
                    mlp_layers=[args.model_width, args.model_width],
                    cnn_depth=args.cnn_depth,
                )
            ),
        )
        start = time.perf_counter()
        model.learn(args.timesteps, progress_bar=True)
        if model.replay_buffer.can_sample(model.sequence_length):
            for _ in trange(args.updates, desc="world-model updates"):
                model.train(gradient_steps=1, batch_size=model.batch_size)
        print(
            f"learned in {time.perf_counter() - start:.0f} s ({args.timesteps} steps, {args.updates} updates)"
        )
        if args.save is not None:
            model.save(args.save)

    # A loaded agent chooses the actions; the model learned here from random actions is shown
    # random actions too (its bare world model gets them).
    source = model if args.load is not None else model.policy.world_model
    strip = collect_prediction(source, pixel_env(args.size), args.horizon, args.context, seed=args.seed + 1)
    out = Path(args.out)
    gif = out / "prediction_strip.gif" if importlib.util.find_spec("imageio") else None
    png = save_prediction_strip(strip, out / "prediction_strip.png", gif_path=gif, scale=2)
    error = np.abs(strip.predicted.astype(float) - strip.real.astype(float)).mean(axis=(1, 2, 3))
    print(f"wrote {png}" + (f" and {gif}" if gif else ""))
    print("| steps ahead | mean absolute pixel error (0-255) |")
    print("|---:|---:|")
    for k in sorted({1, 5, 10, 20, args.horizon} & set(range(1, args.horizon + 1))):
        print(f"| {k} | {error[k - 1]:.1f} |")


if __name__ == "__main__":
    main()
