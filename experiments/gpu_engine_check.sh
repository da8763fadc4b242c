#!/usr/bin/env bash
# The engine's strategy benchmark and the engine tests on a GPU machine that has JAX with CUDA, flax, optax,
# scikit-image and imageio installed (no network there: dipjax is put on the path by copying, not installed).
#   bash experiments/gpu_engine_check.sh OUT_DIR
# Writes OUT_DIR/bench_engine_64/ and OUT_DIR/bench_engine_128/ (metrics.json, figure.png) and OUT_DIR/tests.log.
set -u
out=${1:?usage: gpu_engine_check.sh OUT_DIR}
. experiments/gpu_path.sh
gpu_versions
python3 experiments/bench_engine.py --steps 20 --repeats 2 --out "$out/bench_engine_64"
python3 experiments/bench_engine.py --steps 20 --repeats 2 --images 8 --size 128 --width 128 --out "$out/bench_engine_128"
python3 -m pytest -q -p no:cacheprovider tests/test_engine.py 2>&1 | tee "$out/tests.log" | tail -25
