#!/usr/bin/env bash
# Installs a pinned CUDA 13.0 compiler (nvcc, ptxas, headers) from PyPI wheels into the git-ignored
# folder .cuda-toolchain/ of this project, then prints the NVCC path to export. No GPU, no system
# CUDA and no root are needed; about 270 MB.
#
# Pinned on purpose: newer 13.x wheels write PTX ISA 9.5, which the GPU machines' CUDA 13.0 driver
# (and ptxas 13.0) reject with "Unsupported .version 9.5".
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.cuda-toolchain"
nvcc="$dest/nvidia/cu13/bin/nvcc"

if [ -x "$nvcc" ] && "$nvcc" --version 2>/dev/null | grep -q "release 13.0"; then
  echo "CUDA toolchain already installed" >&2
else
  python3 -m pip --version >/dev/null 2>&1 || { echo "python3 -m pip is needed (apt-get install python3-pip)" >&2; exit 1; }
  rm -rf "$dest"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location --target "$dest" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 >&2
fi
"$nvcc" --version | tail -n 2 >&2
echo "export NVCC=$nvcc"
