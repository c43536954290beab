#!/usr/bin/env bash
# One command, a few minutes, on a machine with a GPU (Vulkan driver present; `npm ci` done):
# builds the bundles and prints, side by side and measured in the same run,
#  - the WebGPU adapter Dawn picks (vendor, architecture, fallback/software or not),
#  - TF.js training samples/s of a NeuMF (MovieLens-100K size) on webgpu vs wasm,
#  - ONNX Runtime latency at batch 1, 256, 4096 on WebGPU (and CUDA when ORT's CUDA provider is
#    installed) vs the CPU provider, with the largest score difference vs CPU.
# Without a GPU it runs on whatever Vulkan driver there is (Mesa's lavapipe: a CPU) and says
# plainly that those are not GPU figures.
#
# Usage: scripts/gpu-check.sh [--quick] [--json]
# Env:   GPU_CHECK_TIMEOUT (seconds, default 280)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

START=$SECONDS
if [[ ! -d node_modules/webgpu || ! -d node_modules/@tensorflow/tfjs-backend-webgpu ]]; then
  echo "gpu-check: node_modules/webgpu or @tensorflow/tfjs-backend-webgpu missing: run npm ci first" >&2
  exit 1
fi

echo "== machine"
echo "node $(node --version), $(nproc) CPU cores, $(uname -sm)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/NVIDIA GPU: /' || true
fi
ICDS=()
for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
  [[ -d $d ]] && for f in "$d"/*.json; do [[ -e $f ]] && ICDS+=("$f"); done
done
if [[ ${#ICDS[@]} -eq 0 ]]; then
  echo "Vulkan drivers (ICDs): none found: WebGPU has no adapter here (install the GPU driver's Vulkan part)"
else
  echo "Vulkan drivers (ICDs): ${ICDS[*]}"
fi
if [[ -n ${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-} ]]; then
  echo "VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-} (restricts the drivers Dawn sees)"
fi
if command -v nvidia-smi >/dev/null 2>&1 && ! printf '%s\n' "${ICDS[@]}" | grep -qi nvidia; then
  echo "NOTE: an NVIDIA GPU but no NVIDIA Vulkan ICD (nvidia_icd.json): WebGPU cannot use it. Install the"
  echo "      driver's Vulkan part (Debian: nvidia-vulkan-icd; containers: NVIDIA_DRIVER_CAPABILITIES=all)."
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  echo "NOTE: libvulkan.so.1 (the Vulkan loader) not found: install libvulkan1"
fi

# Mesa's shader cache in a temp folder (a cold compile on lavapipe takes seconds per shader)
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-${TMPDIR:-/tmp}/prunescope-mesa-shader-cache}"

echo
echo "== build"
node esbuild.mjs

echo
echo "== bench (limit ${GPU_CHECK_TIMEOUT:-280} s)"
rc=0
timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-280}" node --expose-gc dist/bench.js --only=gpu "$@" || rc=$?
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
  echo "gpu-check: stopped after ${GPU_CHECK_TIMEOUT:-280} s (try --quick)" >&2
fi
echo "gpu-check: done in $((SECONDS - START)) s (exit $rc)"
exit $rc
