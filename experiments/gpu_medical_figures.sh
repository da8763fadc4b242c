#!/usr/bin/env bash
# Figures 1 and 5 (medical rows) at the survey's sizes (512² denoising, 320² 15-coil MRI with ESPIRiT maps, 256²
# CT, published widths and budgets; not yet run: no GPU was lent when it was written), on a machine with JAX + CUDA,
# flax, optax and scikit-image (no network there: dipjax is put on the path by copying, not installed). The bundled
# DICOM images are passed as .npy files, so the GPU machine needs no pydicom; make them where dipjax is installed:
#   python -c "import numpy as np; from dipjax.data import load_image as l; [np.save(f'DIR/{n}.npy', l(n)) for n in ('mr_abdomen', 'ct_head')]"
#   bash experiments/gpu_medical_figures.sh OUT_DIR INPUT_DIR
set -u
out=${1:?usage: gpu_medical_figures.sh OUT_DIR INPUT_DIR}
inputs=${2:?usage: gpu_medical_figures.sh OUT_DIR INPUT_DIR}
pkg=$(mktemp -d)
cp -r dipjax "$pkg/dipjax" && cp -r theory "$pkg/dipjax/theory"
export PYTHONPATH="$pkg" PYTHONUNBUFFERED=1
python3 -c "import jax, flax, optax, skimage; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p "$out"
# The two scripts share the GPU (small networks leave it mostly idle): each may take 45 % of its memory.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45
python3 experiments/fig1_overfitting.py --size 512 --width 128 --mri-size 320 --mri-width 128 --coils 15 \
    --maps espirit --mri-image "$inputs/mr_abdomen.npy" --out "$out/fig1_overfitting" \
    > "$out/fig1.log" 2>&1 &
python3 experiments/fig5_medical.py --size 320 --ct-size 256 --coils 15 --maps espirit --width 64 --steps 0 \
    --mri-image "$inputs/mr_abdomen.npy" --ct-image "$inputs/ct_head.npy" \
    --out "$out/fig5_medical" > "$out/fig5.log" 2>&1 &
wait
cat "$out/fig1.log" "$out/fig5.log"
