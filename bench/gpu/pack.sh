#!/usr/bin/env bash
# Packs what bench/gpu/run_device.sh needs into .carry/ (ignored): the gpu test binaries, the
# bench binary, the CLI with its CUDA plugin next to it (libtandem_cuda.so, which the CLI dlopens
# for --backend cuda), and the Debian shared libraries the device image lacks (libdnnl
# xz-compressed to stay under the 64 MiB transfer limit). Build first:
#   cmake -S . -B build-cuda -DTANDEM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
#   make -C build-cuda -j1 tandem tandem_cuda tandem_tests_cuda tandem_tests_cuda_models tandem_cuda_bench
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
B=${BUILD:-$root/build-cuda}
C=$root/.carry
rm -rf "$C"; mkdir -p "$C/bin" "$C/lib"
cp "$B/tests/backend_cuda/tandem_tests_cuda" "$B/src/backend/cuda/tandem_cuda_bench" "$C/bin/"
[[ -f "$B/tests/backend_cuda/tandem_tests_cuda_models" ]] && cp "$B/tests/backend_cuda/tandem_tests_cuda_models" "$C/bin/"
# The CLI and its plugin travel together: the registry looks next to the executable first.
if [[ -f "$B/tools/tandem/tandem" && -f "$B/tools/tandem/libtandem_cuda.so" ]]; then
  cp "$B/tools/tandem/tandem" "$B/tools/tandem/libtandem_cuda.so" "$C/bin/"
else
  echo "pack.sh: no CLI + plugin in $B/tools/tandem (build the tandem and tandem_cuda targets): --backend cuda is not checked" >&2
fi
strip "$C"/bin/* || true  # the plugin keeps its one dynamic symbol (strip removes only the static table)
for lib in libdnnl.so.2 libOpenCL.so.1 libfmt.so.9 libgomp.so.1 libstb.so.0; do
  p=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [[ -n "$p" ]] && cp -L "$p" "$C/lib/"
done
[[ -f $C/lib/libdnnl.so.2 ]] && xz -T2 -1 -f "$C/lib/libdnnl.so.2"
du -sh "$C"
