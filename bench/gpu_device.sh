#!/bin/bash
# The prepared GPU measurement: on a bare machine with a GPU (this repo's working tree, plus the git-ignored .carry/
# and .gl/ made by bench/gpu_carry.sh), set up Deno and the Vulkan loader, then run `deno task bench gpu` once and
# `deno task bench vegcn --webgpu-only` (GCN-V at part1 scale, PyTorch beside it) once, writing their logs, JSON
# records and the machine's description under $OUT. Arguments go to the gpu benchmark (e.g. `--skip-gcn`);
# BENCH_TIMEOUT (seconds, default 300) and VEGCN_TIMEOUT (default 180; 0 skips it) bound them.
#
#     OUT=/some/dir bash bench/gpu_device.sh [bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/results/bench_gpu}
mkdir -p "$OUT"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Deno and the npm packages the benchmark imports (the rest of package.json loads lazily and is not needed)
if ! ls node_modules/@deno/*/deno >/dev/null 2>&1; then
  if [ ! -f .carry/deno.xz ]; then
    echo "gpu_device: no .carry/deno.xz (run bench/gpu_carry.sh where Deno is installed)" >&2
    exit 1
  fi
  target="node_modules/$(cat .carry/deno.path)"
  mkdir -p "$(dirname "$target")"
  xz -dc .carry/deno.xz > "$target"
  chmod +x "$target"
fi
[ -d node_modules/fflate ] && [ -d node_modules/yaml ] || tar -xJf .carry/node_modules.tar.xz

# The Vulkan loader, unpacked beside the run when the machine has none
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  for deb in .gl/*.deb; do dpkg-deb -x "$deb" "$scratch/gl"; done
  export LD_LIBRARY_PATH="$scratch/gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# NVIDIA's Vulkan driver lives in libGLX_nvidia.so.0; where no ICD file names it, write one
if ! grep -ls nvidia /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  lib=$(/sbin/ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0 /{print $NF; exit}')
  if [ -n "$lib" ]; then
    printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3"}}\n' "$lib" \
      > "$scratch/nvidia_icd.json"
    export VK_ICD_FILENAMES="$scratch/nvidia_icd.json" VK_DRIVER_FILES="$scratch/nvidia_icd.json"
  fi
fi

export PATH="$PWD/bin:$PATH"
{
  nvidia-smi 2>&1 || echo "nvidia-smi: not found"
  deno --version
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 || true
  nproc
} > "$OUT/machine.txt"
status=0
timeout "${BENCH_TIMEOUT:-300}" deno task bench gpu --json "$OUT/bench_gpu.json" "$@" 2>&1 | tee "$OUT/bench_gpu.log" ||
  status=$?
if [ "${VEGCN_TIMEOUT:-180}" != 0 ]; then
  timeout "${VEGCN_TIMEOUT:-180}" deno task bench vegcn --webgpu-only --json "$OUT/bench_vegcn.json" 2>&1 |
    tee "$OUT/bench_vegcn.log" || status=$?
fi
exit "$status"
