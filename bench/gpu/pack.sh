#!/usr/bin/env bash
# Packs what bench/gpu/run_device.sh needs into .carry/ (ignored): the gpu test binaries, the
# bench binary, the CLI with its CUDA plugin next to it (libtandem_cuda.so, which the CLI dlopens
# for --backend cuda), and the Debian shared libraries the device image lacks, all xz-compressed
# to stay under the 64 MiB transfer limit (run_device.sh unpacks them). Build first:
#   cmake -S . -B build-cuda -DTANDEM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
#   make -C build-cuda -j1 tandem tandem_cuda tandem_tests_cuda tandem_tests_cuda_models tandem_cuda_bench \
#       tandem_backend_ops_cuda tandem_conformance_cuda tandem_tests_cli_quant_backend_gpu tandem_dynamic_shapes_cuda
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
B=${BUILD:-$root/build-cuda}
C=${CARRY:-$root/.carry}  # CARRY: another folder (ignored by git: .carry*), so two people can pack at once
rm -rf "$C"; mkdir -p "$C/bin" "$C/lib"
cp "$B/tests/backend_cuda/tandem_tests_cuda" "$B/src/backend/cuda/tandem_cuda_bench" "$C/bin/"
[[ -f "$B/tests/backend_cuda/tandem_tests_cuda_models" ]] && cp "$B/tests/backend_cuda/tandem_tests_cuda_models" "$C/bin/"
# `--backend cuda` of calibrate / compare / build-dla through the CLI (TANDEM_CLI on the device).
[[ -f "$B/tests/cli/tandem_tests_cli_quant_backend_gpu" ]] && cp "$B/tests/cli/tandem_tests_cli_quant_backend_gpu" "$C/bin/"
# Data-dependent shapes (NonZero, NMS) on the GPU: hand-built networks, no data files.
[[ -f "$B/tests/conformance/tandem_dynamic_shapes_cuda" ]] && cp "$B/tests/conformance/tandem_dynamic_shapes_cuda" "$C/bin/"
# The cross-backend op test and the ONNX node tests on the CUDA backend, with ONNX's test data
# (the device image has no libonnx-testdata; run_device.sh unpacks it where the tests look).
# SKIP_OPS=1: neither (they are large; run_device.sh skips them the same way).
for t in tests/backend_ops/tandem_backend_ops_cuda tests/conformance/tandem_conformance_cuda; do
  [[ -z "${SKIP_OPS:-}" && -f "$B/$t" ]] && cp "$B/$t" "$C/bin/"
done
[[ -z "${SKIP_OPS:-}" && -d /usr/share/libonnx-testdata ]] && tar -cJf "$C/testdata.tar.xz" -C /usr/share libonnx-testdata/data/node
# The CLI and its plugin travel together: the registry looks next to the executable first.
if [[ -f "$B/tools/tandem/tandem" && -f "$B/tools/tandem/libtandem_cuda.so" ]]; then
  cp "$B/tools/tandem/tandem" "$B/tools/tandem/libtandem_cuda.so" "$C/bin/"
else
  echo "pack.sh: no CLI + plugin in $B/tools/tandem (build the tandem and tandem_cuda targets): --backend cuda is not checked" >&2
fi
strip "$C"/bin/* || true  # the plugin keeps its one dynamic symbol (strip removes only the static table)
for lib in libdnnl.so.2 libOpenCL.so.1 libfmt.so.9 libgomp.so.1 libstb.so.0; do
  # (awk reads all of ldconfig's output: an early exit would fail the pipe under pipefail)
  p=$(ldconfig -p | awk -v l="$lib" '$1 == l && !p {p = $NF} END {print p}')
  [[ -n "$p" ]] && cp -L "$p" "$C/lib/"
done
[[ -f $C/lib/libdnnl.so.2 ]] && xz -T2 -1 -f "$C/lib/libdnnl.so.2"
# The binaries too: unpacked they pass the device tool's 64 MiB limit (~110 MiB with the op and
# node tests); run_device.sh unpacks them there.
xz -T2 -1 -f "$C"/bin/*
du -sh "$C"
