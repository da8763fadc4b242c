#!/usr/bin/env bash
# The GPU runs, on a machine with JAX + CUDA, flax, optax and scikit-image (and PyTorch for the step comparison; no
# network there: dipjax is put on the path by copying, not installed):
#   1. experiments/bench_step.py at 256² and 512² (width 128), alone on the GPU so that nothing disturbs its timings;
#   2. Figures 1 and 5 (medical rows) at the survey's sizes (512² denoising, 320² 15-coil MRI with ESPIRiT maps,
#      256² CT, published widths), side by side on the GPU (small networks leave it mostly idle). Figure 5 runs
#      FIG5_STEPS updates per method (0, the default: each method's published budget, hours for aSeqDIP's 60,000).
# The bundled DICOM images are passed as .npy files, so the GPU machine needs no pydicom; make them where dipjax is
# installed:
#   python -c "import numpy as np; from dipjax.data import load_image as l; [np.save(f'DIR/{n}.npy', l(n)) for n in ('mr_abdomen', 'ct_head')]"
#   bash experiments/gpu_medical_figures.sh OUT_DIR INPUT_DIR [FIG5_STEPS [SECONDS]]
# SECONDS bounds the whole script's wall time: the figure scripts are stopped (`timeout`) 15 s before it (default:
# no bound). Logs go to OUT_DIR/log.txt.
set -u
out=${1:?usage: gpu_medical_figures.sh OUT_DIR INPUT_DIR [FIG5_STEPS [SECONDS]]}
inputs=${2:?usage: gpu_medical_figures.sh OUT_DIR INPUT_DIR [FIG5_STEPS [SECONDS]]}
fig5_steps=${3:-0}
limit=${4:-0}
. experiments/gpu_path.sh
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$out"
{
  gpu_versions
  timeout 240 python3 experiments/bench_step.py --no-engine --out "$out/bench_step"
} > "$out/log.txt" 2>&1
[ "$limit" -gt 0 ] && limit=$((limit - SECONDS - 15)) && [ "$limit" -le 0 ] && limit=1
timeout "$limit" python3 experiments/fig1_overfitting.py --size 512 --width 128 --mri-size 320 --mri-width 128 \
    --coils 15 --maps espirit --mri-image "$inputs/mr_abdomen.npy" --out "$out/fig1_overfitting" \
    > "$out/fig1.log" 2>&1 &
timeout "$limit" python3 experiments/fig5_medical.py --size 320 --ct-size 256 --coils 15 --maps espirit --width 64 \
    --steps "$fig5_steps" --mri-image "$inputs/mr_abdomen.npy" --ct-image "$inputs/ct_head.npy" \
    --out "$out/fig5_medical" > "$out/fig5.log" 2>&1 &
wait
cat "$out/fig1.log" "$out/fig5.log" >> "$out/log.txt" && rm "$out/fig1.log" "$out/fig5.log"
cat "$out/log.txt"
