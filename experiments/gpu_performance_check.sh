#!/usr/bin/env bash
# The performance issue's GPU runs, on a machine with JAX + CUDA, flax, optax and scikit-image (PyTorch optional, for
# the step comparison; no network there: dipjax is put on the path by copying, not installed). In this order, each
# bounded by `timeout` so that one slow part cannot eat the others' time, alone on the GPU (nothing runs beside it):
#   1. experiments/time_to_quality.py at the size, 256², width 128, five bundled images, DIP's 3000-step budget
#      (two `dipjax dataset` runs: also the dataset runner's first run on a GPU);
#   2. experiments/bench_ntk.py at C = 4096 (float64);
#   3. experiments/bench_step.py at 256² and 512², width 128, against PyTorch on the same GPU (the network code
#      changed since experiments/results/bench_step_gpu/: closed-form batch-norm and 1×1 derivatives).
#   bash experiments/gpu_performance_check.sh OUT_DIR [SECONDS_TTQ SECONDS_NTK SECONDS_STEP]
# Logs go to OUT_DIR/log.txt; each part writes OUT_DIR/<part>/metrics.json. On one H200 the parts took 190 s, 14 s and
# 117 s (bench_step alone; the default bounds leave room for compilation on a colder machine).
set -u
out=${1:?usage: gpu_performance_check.sh OUT_DIR [SECONDS_TTQ SECONDS_NTK SECONDS_STEP]}
t_ttq=${2:-300}
t_ntk=${3:-90}
t_step=${4:-240}
. experiments/gpu_path.sh
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
gpu_versions
# dipjax's XLA options are CPU options measured on jaxlib 0.10/0.11; if this jaxlib rejects them, run without them
python3 -c "from dipjax.xla_flags import apply_default_flags as a; a(); import jax.numpy as j; print(j.ones(3).sum())" \
    || export DIPJAX_XLA_DEFAULTS=off
echo "== time_to_quality ($(date +%T))"
timeout "$t_ttq" python3 experiments/time_to_quality.py --size 256 --width 128 --out "$out/time_to_quality"
echo "== bench_ntk ($(date +%T))"
timeout "$t_ntk" python3 experiments/bench_ntk.py --widths 4096 --out "$out/bench_ntk"
echo "== bench_step ($(date +%T))"
timeout "$t_step" python3 experiments/bench_step.py --no-engine --rounds 2 --out "$out/bench_step"
echo "== done ($(date +%T))"
