#!/usr/bin/env bash
# Installs everything tandem needs on a fresh Debian 12 machine (apt-get through sudo unless
# root), then fetches the test data. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pkgs=(build-essential cmake g++ pkg-config git
      libprotobuf-dev protobuf-compiler libonnx-dev libdnnl-dev
      libcli11-dev nlohmann-json3-dev libfmt-dev libstb-dev libxxhash-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      libonnx-testdata graphviz
      ocl-icd-opencl-dev opencl-c-headers  # Debian's dnnl-config.cmake requires OpenCL
      pybind11-dev python3-dev python3-numpy python3-pytest  # the Python module (python/) and its tests
      ccache
      clang-14 libclang-rt-14-dev libfuzzer-14-dev libomp-14-dev llvm-14 lld-14)  # the clang sanitizer + fuzz build
# scripts/check-deps.sh asks for the list to prove the build uses nothing else.
if [[ "${1:-}" == "--list-packages" ]]; then printf '%s\n' "${pkgs[@]}"; exit 0; fi
# Node.js is only needed for npm (models, ONNX Runtime peer); keep one that is already there.
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=(); ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
"$root/scripts/fetch-data.sh"
if [[ -f "$root/tools/peer/package.json" ]]; then
  (cd "$root/tools/peer" && npm ci --ignore-scripts --no-audit --no-fund --silent)
fi
