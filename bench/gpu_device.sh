#!/bin/bash
# The prepared GPU measurement: on a bare machine with a GPU (this repo's working tree, plus the git-ignored .carry/
# and .gl/ made by bench/gpu_carry.sh), set up Deno and the Vulkan loader, then run `deno task bench gpu` once and
# `deno task bench vegcn --webgpu-only` (GCN-V at part1 scale, PyTorch beside it) once, writing their logs, JSON
# records and the machine's description under $OUT. Arguments go to the gpu benchmark (e.g. `--skip-gcn`);
# BENCH_TIMEOUT (seconds, default 300) and VEGCN_TIMEOUT (default 180) bound them; 0 skips one.
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

# The Vulkan loader and glvnd (NVIDIA's Vulkan driver lives in libGLX_nvidia, which needs glvnd to answer), unpacked
# into / where the machine has no loader (the device README's recipe), then the driver's own ICD file where it has one
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  for deb in .gl/*.deb; do dpkg -x "$deb" /; done
  /sbin/ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
done
for egl in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
done

export PATH="$PWD/bin:$PATH"
{
  nvidia-smi 2>&1 || echo "nvidia-smi: not found"
  deno --version
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 || true
  nproc
} > "$OUT/machine.txt"
status=0
if [ "${BENCH_TIMEOUT:-300}" != 0 ]; then
  timeout "${BENCH_TIMEOUT:-300}" deno task bench gpu --json "$OUT/bench_gpu.json" "$@" 2>&1 | tee "$OUT/bench_gpu.log" ||
    status=$?
fi
if [ "${VEGCN_TIMEOUT:-180}" != 0 ]; then
  timeout "${VEGCN_TIMEOUT:-180}" deno task bench vegcn --webgpu-only --json "$OUT/bench_vegcn.json" 2>&1 |
    tee "$OUT/bench_vegcn.log" || status=$?
fi
exit "$status"
