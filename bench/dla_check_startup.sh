#!/usr/bin/env bash
# Whole-process cost of the CLI's CPU-only commands (issue 12: they must load no CUDA library):
# `tandem dla-check` of PP-OCRv4 det at x:1x3x640x640 and `tandem --version`, N runs each
# (default 10): min / median / max wall time and peak RSS. Wall time is measured around the
# process with a nanosecond clock (/usr/bin/time's %e has 10 ms steps); peak RSS is
# /usr/bin/time's %M. Also prints the machine (CPU model, cores, load) and the commit.
#   bench/dla_check_startup.sh [BUILD_DIR] [RUNS]     (BUILD_DIR default: build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
B=${1:-$root/build/release}
N=${2:-10}
T=$B/tools/tandem/tandem
DET=$root/.data/models/ch_PP-OCRv4_det_infer.onnx
[[ -x $T ]] || { echo "dla_check_startup.sh: no CLI at $T (build the tandem target)" >&2; exit 2; }
[[ -f $DET ]] || { echo "dla_check_startup.sh: $DET is missing: run scripts/fetch-data.sh" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "dla_check_startup.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit:  $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src tools include 2>/dev/null || echo '+dirty') ($(date -u +%F))"
echo "cli:     $T"

# measure NAME ARGS...: N runs, then "NAME: wall min/median/max ms, peak RSS min/median/max MiB".
measure() {
  local name=$1; shift
  local walls=() rss=() tmp
  tmp=$(mktemp)
  "$T" "$@" > /dev/null 2>&1 || { echo "$name: tandem $* failed:" >&2; "$T" "$@" >&2; exit 2; }  # warm the page cache
  for ((i = 0; i < N; i++)); do
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %M' -o "$tmp" "$T" "$@" > /dev/null 2>&1
    t1=$(date +%s%N)
    walls+=("$(( (t1 - t0) / 1000 ))")
    rss+=("$(awk '{print $2}' "$tmp")")
  done
  rm -f "$tmp"
  python3 - "$name" "${walls[*]}" "${rss[*]}" <<'PY'
import statistics, sys
name, walls, rss = sys.argv[1], [int(x) / 1000 for x in sys.argv[2].split()], [int(x) / 1024 for x in sys.argv[3].split()]
print(f"{name}: wall ms min {min(walls):.1f} median {statistics.median(walls):.1f} max {max(walls):.1f}; "
      f"peak RSS MiB min {min(rss):.1f} median {statistics.median(rss):.1f} max {max(rss):.1f} ({len(walls)} runs)")
PY
}

measure "dla-check det 1x3x640x640" dla-check "$DET" --shapes x:1x3x640x640
measure "--version" --version
