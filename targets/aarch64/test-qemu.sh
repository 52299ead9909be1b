#!/usr/bin/env bash
# Runs the aarch64 test binaries listed by build.sh under qemu-user, each from its
# package directory as `cargo test` would. sinter-kernels runs once per kernel tier the
# emulator supports (SINTER_CPU=scalar and neon); the other crates run with the tier the
# runtime picks by itself (neon). Usage: targets/aarch64/test-qemu.sh
set -euo pipefail
. "$(dirname "$0")/env.sh"
list="$CARGO_TARGET_DIR/tests.txt"
[ -s "$list" ] || { echo "test-qemu: $list is missing: run targets/aarch64/build.sh first" >&2; exit 1; }

failed=0
run() { # run DIR EXE [ENV...]
  local dir=$1 exe=$2
  shift 2
  echo "== qemu-aarch64 $(basename "$exe") ${*:-}"
  if ! (cd "$dir" && env "$@" "${QEMU[@]}" "$exe" --quiet); then
    echo "test-qemu: FAILED $(basename "$exe") ${*:-}" >&2
    failed=1
  fi
}
while IFS=$'\t' read -r dir name exe; do
  if [ "$(basename "$dir")" = kernels ]; then
    for tier in scalar neon; do run "$dir" "$exe" SINTER_CPU=$tier; done
  else
    run "$dir" "$exe"
  fi
done <"$list"
exit $failed
