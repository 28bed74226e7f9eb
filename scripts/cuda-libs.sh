#!/usr/bin/env bash
# Installs the NVIDIA NVRTC library from PyPI into target/cuda-libs (it loads without a GPU) and
# prints the folder holding libnvrtc.so.12. The kernels include no CUDA header (f16 converts with
# PTX cvt), so the CUDA runtime package and its cuda_fp16.h are not needed, here or on a device.
# The NVRTC compile test (runtime/tests/nvrtc_compile.rs) finds it through LD_LIBRARY_PATH:
#   LD_LIBRARY_PATH=$(scripts/cuda-libs.sh) cargo test -p brenier --features cuda --test nvrtc_compile
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/cuda-libs
lib="$dest/nvidia/cuda_nvrtc/lib"
if [ ! -e "$lib/libnvrtc.so.12" ]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest" \
    'nvidia-cuda-nvrtc-cu12==12.6.*' >&2
fi
test -e "$lib/libnvrtc.so.12" || { echo "libnvrtc.so.12 missing under $lib after install" >&2; exit 1; }
realpath "$lib"
