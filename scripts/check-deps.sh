#!/usr/bin/env bash
# Proves that scripts/setup.sh installs every Debian package the build used: every header the
# compiler read, every library the linker took and every file CMake's find_* calls found must
# belong to a package that setup.sh lists, or to one of their (recursive) dependencies.
# A package installed by hand on a developer's machine and missing from setup.sh fails here,
# before it fails on a fresh machine. /usr/local (the CUDA toolkit) is not Debian's and is skipped.
# Usage: scripts/check-deps.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: check-deps.sh BUILD_DIR}"
[[ -f "$build/CMakeCache.txt" ]] || { echo "check-deps: error: $build/CMakeCache.txt: not a configured build folder" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 1. Files the build used (system ones only).
{
  sed -nE 's/^[A-Za-z0-9_]+:(FILEPATH|PATH)=(\/usr\/.*)$/\2/p' "$build/CMakeCache.txt"
  find "$build" -name '*.o.d' -print0 | xargs -0 -r cat | tr ' \\' '\n\n'
  find "$build" -name link.txt -print0 | xargs -0 -r cat | tr ' ' '\n'
} | grep -E '^/usr/' | grep -vE '^/usr/local(/|$)' | sed 's/:$//' | sort -u > "$tmp/raw"
while IFS= read -r f; do
  [[ -e "$f" ]] || continue
  echo "$f"
  real="$(readlink -f "$f")"
  if [[ "$real" != "$f" ]]; then echo "$real"; fi
done < "$tmp/raw" | sort -u > "$tmp/files"
# dpkg records paths as packaged; /lib and /usr/lib are the same folder on merged-/usr systems.
: > "$tmp/owners"
xargs -r -a "$tmp/files" dpkg -S 2>/dev/null | grep -v '^diversion' > "$tmp/owners" || true
sed -E 's#^/usr/lib/#/lib/#' "$tmp/files" | xargs -r dpkg -S 2>/dev/null | grep -v '^diversion' >> "$tmp/owners" || true
# "pkg1:amd64, pkg2: /path" -> "pkg1\npkg2", keyed by path
awk -F': ' '{ n = split($1, p, ", "); for (i = 1; i <= n; ++i) { sub(/:.*/, "", p[i]); print $2 "\t" p[i] } }' \
  "$tmp/owners" | sed -E 's#^/lib/#/usr/lib/#' | sort -u > "$tmp/path_pkg"

# 2. What setup.sh installs, closed under Depends/Pre-Depends.
mapfile -t listed < <(bash "$root/scripts/setup.sh" --list-packages)
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${listed[@]}" 2>/dev/null \
  | sed -nE 's/^([a-z0-9][a-z0-9.+-]*)(:[a-z0-9]+)?$/\1/p; s/^ +(Pre)?Depends: ([a-z0-9][a-z0-9.+-]*)(:[a-z0-9]+)?$/\2/p' \
  | sort -u > "$tmp/closure"
printf '%s\n' "${listed[@]}" >> "$tmp/closure"
# Packages every Debian system has (priority required) need no listing.
dpkg-query -W -f='${Package} ${Priority}\n' | awk '$2 == "required" { print $1 }' >> "$tmp/closure"
sort -u -o "$tmp/closure" "$tmp/closure"

# 3. A used path is fine when any of its owners is in the closure.
bad="$(awk -F'\t' 'NR == FNR { ok[$1] = 1; next } { if (ok[$2]) good[$1] = 1; else cand[$1] = cand[$1] " " $2 }
                  END { for (p in cand) if (!good[p]) print p ":" cand[p] }' "$tmp/closure" "$tmp/path_pkg" | sort)"
checked="$(cut -f1 "$tmp/path_pkg" | sort -u | wc -l)"
if [[ -n "$bad" ]]; then
  echo "check-deps: error: the build used files of Debian packages that scripts/setup.sh does not install:" >&2
  echo "$bad" | awk -F':' '{ print "  " $1 "  (package:" $2 ")" }' | head -n 40 >&2
  exit 1
fi
echo "check-deps: $checked system files used by $build all come from packages scripts/setup.sh installs"
