#!/usr/bin/env bash
# Cross-builds Sinter for aarch64-unknown-linux-gnu with a glibc 2.17 floor, on a plain
# Debian (bookworm) machine without Docker. Installs what it needs (apt as root, a
# venv with zig + cargo-zigbuild under .cache/), then:
#   - builds the `sinter` CLI, the runtime-only example `run_plan` and the Lite API example;
#   - builds (without running) the test binaries of sinter-kernels, sinter-plan and
#     sinter-runtime, listed in target/aarch64/tests.txt for targets/aarch64/test-qemu.sh;
#   - checks every produced binary needs no glibc newer than 2.17 (check-glibc.sh);
#   - writes stripped copies to target/aarch64/dist/ and prints their sizes;
#   - checks that sinter-runtime depends on neither the builder nor the ONNX importer.
# Usage: targets/aarch64/build.sh [--no-tests]
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"

cross_install
echo "aarch64: $(rustc --version), $(cargo-zigbuild --version), zig $(python3 -m ziglang version)"

# Building the runtime must not pull in the builder's dependencies.
if cargo tree -q -p sinter-runtime -e normal --target "$TRIPLE" --prefix none |
  grep -E '^(sinter-(builder|onnx|optimizer)|prost) '; then
  echo "aarch64: sinter-runtime depends on builder/ONNX crates (above)" >&2
  exit 1
fi

ZTARGET="$TRIPLE.$GLIBC_FLOOR"
cargo zigbuild --release --target "$ZTARGET" \
  -p sinter-cli --bin sinter \
  -p sinter-runtime --example run_plan \
  -p sinter --example lite
bins=("$OUT/sinter" "$OUT/examples/run_plan" "$OUT/examples/lite")

if [ "${1:-}" != --no-tests ]; then
  # Test binaries: the JSON messages name each executable.
  cargo-zigbuild test --release --target "$ZTARGET" --no-run --message-format=json \
    -p sinter-kernels -p sinter-plan -p sinter-runtime >"$CARGO_TARGET_DIR/tests.json"
  python3 - "$CARGO_TARGET_DIR/tests.json" >"$CARGO_TARGET_DIR/tests.txt" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["manifest_path"].rsplit("/", 1)[0] + "\t" + m["target"]["name"] + "\t" + m["executable"])
EOF
  while IFS=$'\t' read -r _ _ exe; do bins+=("$exe"); done <"$CARGO_TARGET_DIR/tests.txt"
  echo "aarch64: $(wc -l <"$CARGO_TARGET_DIR/tests.txt") test binaries listed in $CARGO_TARGET_DIR/tests.txt"
fi

"$ROOT/targets/aarch64/check-glibc.sh" "${bins[@]}"

mkdir -p "$DIST"
for b in sinter examples/run_plan examples/lite; do
  aarch64-linux-gnu-strip -o "$DIST/$(basename "$b")" "$OUT/$b"
done
echo "aarch64: stripped sizes (bytes, $DIST):"
for f in sinter run_plan lite; do
  printf '  %-9s %9d  (unstripped %d)\n' "$f" "$(stat -c %s "$DIST/$f")" "$(stat -c %s "$OUT/$( [ $f = sinter ] && echo sinter || echo examples/$f)")"
done
