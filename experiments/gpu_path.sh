# Sourced by the experiments/gpu_*.sh scripts (run from the repository root): the GPU machine has JAX with CUDA,
# flax, optax and scikit-image but no network, so dipjax is put on the path by copying (the theory package where the
# installed layout has it, dipjax.theory), not installed; then the versions and the GPU go into the log.
pkg=$(mktemp -d)
cp -r dipjax "$pkg/dipjax" && cp -r theory "$pkg/dipjax/theory"
export PYTHONPATH="$pkg" PYTHONUNBUFFERED=1

gpu_versions() {
  python3 -c "import jax, flax, optax, skimage; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
}
