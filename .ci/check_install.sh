#!/usr/bin/env bash
# Clean-venv checks of the documented installs, each in a fresh virtual environment:
#   pip install -e ".[sb3]"  -> the advrl CLI (envs, train, eval, plot) and the demo script
#   pip install -e .         -> the environments alone: every env steps, the checkers pass
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
TORCH="torch==2.13.0"  # the tested CPU build, as the Makefile pins it
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== pip install -e .[sb3] in a clean venv"
$PYTHON -m venv "$WORK/sb3"
"$WORK/sb3/bin/python" -m pip install -q --upgrade pip
"$WORK/sb3/bin/python" -m pip install -q "$TORCH"
"$WORK/sb3/bin/python" -m pip install -q -e ".[sb3]" "$TORCH"
ADVRL="$WORK/sb3/bin/advrl"
"$ADVRL" envs
"$ADVRL" train PPO AdvRL/GridWorld-v0 --timesteps 512 --out "$WORK/run" --no-progress-bar --hp n_steps=128 batch_size=64
"$ADVRL" eval "$WORK/run" --episodes 2
"$ADVRL" plot "$WORK/run" --out "$WORK/curve.png"
test -s "$WORK/run/learning_curve.png" && test -s "$WORK/curve.png"
(cd "$WORK" && "$WORK/sb3/bin/python" "$ROOT/examples/world_model_mpc.py" --timesteps 300 --eval-episodes 1 \
    --out "$WORK/demo" --horizon 5 --population-size 20)
test -s "$WORK/demo/learning_curve.png"

echo "== pip install -e . (no extras) in a clean venv"
$PYTHON -m venv "$WORK/bare"
"$WORK/bare/bin/python" -m pip install -q --upgrade pip
"$WORK/bare/bin/python" -m pip install -q -e .
"$WORK/bare/bin/python" .ci/check_bare_install.py
echo "clean-venv install checks passed"
