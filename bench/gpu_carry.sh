#!/bin/sh
# Prepare what bench/gpu_device.sh needs on a bare GPU machine, in two git-ignored folders the device run carries
# (64 MiB in all): .carry/ holds the pinned Deno (xz) and the two npm packages the GPU benchmark imports (fflate,
# yaml); .gl/ holds the Vulkan loader's and glvnd's .debs, which Deno's WebGPU needs to reach an NVIDIA driver.
# Run once, here, after `make install`:  sh bench/gpu_carry.sh
set -eu
cd "$(dirname "$0")/.."
deno_exe=$(ls node_modules/@deno/*/deno 2>/dev/null | head -n 1)
[ -n "$deno_exe" ] || { echo "gpu_carry: no Deno under node_modules/@deno (run 'make install' first)" >&2; exit 1; }
mkdir -p .carry .gl
echo "gpu_carry: compressing $deno_exe"
xz -T0 -6 -c "$deno_exe" > .carry/deno.xz
echo "$deno_exe" | sed 's|^node_modules/||' > .carry/deno.path
tar -cJf .carry/node_modules.tar.xz node_modules/fflate node_modules/yaml
(cd .gl && rm -f ./*.deb && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .carry .gl
