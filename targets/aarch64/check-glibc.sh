#!/usr/bin/env bash
# Fails unless every given ELF file is an aarch64 executable whose dynamic symbols need
# no glibc version newer than the floor (default 2.17), read from `objdump -T`:
# the versions the binary actually references, not what the toolchain promised.
# Usage: targets/aarch64/check-glibc.sh FILE... (GLIBC_FLOOR=2.17 to change the floor)
set -euo pipefail
floor="${GLIBC_FLOOR:-2.17}"
objdump=aarch64-linux-gnu-objdump
readelf=aarch64-linux-gnu-readelf
command -v "$objdump" >/dev/null || objdump=objdump
command -v "$readelf" >/dev/null || readelf=readelf
(($#)) || { echo "usage: $0 FILE..." >&2; exit 2; }

newer() { # newer A B: A > B as versions
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n1)" = "$1" ]
}

status=0
for f in "$@"; do
  if ! "$readelf" -h "$f" 2>/dev/null | grep -q 'Machine:.*AArch64'; then
    echo "glibc check: $f is not an aarch64 ELF file" >&2
    status=1
    continue
  fi
  versions=$("$objdump" -T "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV)
  if [ -z "$versions" ]; then
    echo "glibc check: $f references no GLIBC symbol versions (static or unreadable?)" >&2
    status=1
    continue
  fi
  max=$(tail -n1 <<<"$versions")
  if newer "$max" "$floor"; then
    echo "glibc check: FAIL $f needs GLIBC_$max (> $floor):" >&2
    "$objdump" -T "$f" | grep -E "GLIBC_($(sed 's/\./\\./g' <<<"$max"))" | sed -n 's/^/    /; 1,20p' >&2
    status=1
  else
    echo "glibc check: ok   $(basename "$f") needs GLIBC <= $max"
  fi
done
exit $status
