#!/usr/bin/env bash
# CI for aarch64 (targets/README.md): cross-build with a glibc 2.17 floor, check the ELF
# version needs, run the aarch64 tests under qemu-user, and check that plans built here
# with `--target aarch64` give the same outputs on aarch64 (qemu) as on x86_64.
# Installs what it needs (Debian, root). Needs an x86_64 host.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$SECONDS
stage() { echo "== aarch64 CI: $1 (at $((SECONDS - start)) s)"; }

stage "install, cross build, glibc check, sizes"
targets/aarch64/build.sh

stage "host sinter and test data"
cargo build --release --quiet -p sinter-cli
models=$(cargo xtask testdata | sed -n 's/^SINTER_MODELS_DIR=//p')

stage "aarch64 tests under qemu"
targets/aarch64/test-qemu.sh

stage "plans built on x86_64, run on aarch64 under qemu"
. targets/aarch64/env.sh
.cache/venv/bin/python targets/aarch64/cross_check.py --x86 target/release/sinter --arm "$OUT/sinter" \
  --qemu "${QEMU[*]}" --models "$models" --work "$CARGO_TARGET_DIR/cross-check" ppocr_det ppocr_cls mobilenetv2

stage "inspect, bench, run_plan and the Lite API example under qemu"
cls="$CARGO_TARGET_DIR/cross-check/ppocr_cls"
"${QEMU[@]}" "$OUT/sinter" inspect "$cls/aarch64.plan" >"$CARGO_TARGET_DIR/inspect.txt"
head -n 4 "$CARGO_TARGET_DIR/inspect.txt"
"${QEMU[@]}" "$OUT/sinter" bench "$cls/aarch64.plan" --warmup 1 --iterations 3 --json >/dev/null
"${QEMU[@]}" "$OUT/examples/run_plan" "$cls/aarch64.plan" "x=$models/ppocr_cls/case0/inputs/x.npy"
"${QEMU[@]}" "$OUT/examples/lite" "$cls/generic.plan"
if "${QEMU[@]}" "$OUT/sinter" run "$cls/x86_64.plan" 2>"$CARGO_TARGET_DIR/refused.txt"; then
  echo "aarch64: an x86_64 plan was accepted on aarch64" >&2
  exit 1
fi
if ! grep -q "plan was built for target 'x86_64' but this machine is aarch64" "$CARGO_TARGET_DIR/refused.txt"; then
  echo "aarch64: wrong error for an x86_64 plan:" >&2
  cat "$CARGO_TARGET_DIR/refused.txt" >&2
  exit 1
fi
cat "$CARGO_TARGET_DIR/refused.txt"

stage "done"
