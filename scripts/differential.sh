#!/usr/bin/env bash
# Differential testing against ONNX Runtime: N random valid graphs (fuzz/onnx_gen.cpp) run by
# tandem's CPU backend and by ONNX Runtime (tools/peer/ort_batch.js, optimization level basic);
# every output compared (|diff| <= 1e-4 + 1e-3 |ort|). Batches of 1000 graphs, seeds 1.. .
# Usage: scripts/differential.sh [N=10000] [BUILD_DIR=build/release]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-10000}"
build="${2:-$root/build/release}"
bin="$build/fuzz/tandem_diff_ort"
[[ -x "$bin" ]] || { echo "differential: error: $bin missing (cmake --build $build --target tandem_diff_ort)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
total=0 agree=0 bad=0 seed=0
while ((total < n)); do
  seed=$((seed + 1))
  k=$((n - total < 1000 ? n - total : 1000))
  rm -rf "$tmp/b" && "$bin" gen "$k" "$seed" "$tmp/b"
  node "$root/tools/peer/ort_batch.js" "$tmp/b" > "$tmp/ort.json"
  if ls "$tmp/b"/*.ort.err >/dev/null 2>&1; then
    echo "ONNX Runtime rejected generated graphs (seed $seed):"; head -n 3 "$tmp/b"/*.ort.err
  fi
  out="$("$bin" check "$tmp/b" || true)"
  grep -E "^(DISAGREE|FAIL)" <<<"$out" | sed "s/^/seed $seed: /" || true
  a=$(sed -nE 's/.*agree: ([0-9]+), disagree or fail: ([0-9]+)/\1/p' <<<"$out")
  d=$(sed -nE 's/.*agree: ([0-9]+), disagree or fail: ([0-9]+)/\2/p' <<<"$out")
  total=$((total + k)); agree=$((agree + a)); bad=$((bad + d))
done
echo "differential: $total random graphs, $agree agree with ONNX Runtime, $bad disagree or fail"
((bad == 0))
