# Sourced by the aarch64 scripts: installs the cross toolchain if needed (Debian, as root)
# and sets the environment for `cargo zigbuild`. Idempotent; everything cached lives in
# .cache/ (the zig venv) and target/aarch64/ (the build).
#
# Why this combination: the rustup toolchain on the build machine cannot fetch other
# targets, so the aarch64 standard library comes from Debian (rustc-web +
# libstd-rust-web-dev:arm64, same compiler version for host and target). Zig is the linker
# because it links against glibc 2.17 symbol stubs: the binaries then need nothing newer
# than glibc 2.17 (JetPack 4 / Ubuntu 18.04 on a TX2 has 2.27). Linking with Debian's
# gcc-aarch64-linux-gnu instead would require glibc 2.34 (bookworm's headers).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TRIPLE=aarch64-unknown-linux-gnu
# The glibc floor; `cargo zigbuild --target TRIPLE.2.17` picks zig's stubs for it.
GLIBC_FLOOR=2.17
CROSS_VENV="$ROOT/.cache/cross-venv"
ZIG_PINS="cargo-zigbuild==0.24.1 ziglang==0.17.1"
export CARGO_TARGET_DIR="$ROOT/target/aarch64"
OUT="$CARGO_TARGET_DIR/$TRIPLE/release"
DIST="$CARGO_TARGET_DIR/dist"

# Debian packages: the compiler and aarch64 std, the arm64 C runtime qemu runs binaries
# against (libc6:arm64, libgcc-s1:arm64), binutils for objdump/strip, qemu-user, and
# gcc-aarch64-linux-gnu for the plain (non-zig) build path in targets/README.md.
APT_PACKAGES=(rustc-web cargo-web libstd-rust-web-dev:arm64 libc6:arm64 libgcc-s1:arm64
  binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu qemu-user python3-venv)

cross_install() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "aarch64: installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
      echo "aarch64: need root to apt-get install ${missing[*]} (or install them yourself)" >&2
      return 1
    fi
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
  fi
  if [ "$(cat "$CROSS_VENV/.stamp" 2>/dev/null)" != "$ZIG_PINS" ]; then
    echo "aarch64: installing $ZIG_PINS into $CROSS_VENV"
    python3 -m venv "$CROSS_VENV"
    # shellcheck disable=SC2086
    "$CROSS_VENV/bin/pip" install -q --disable-pip-version-check $ZIG_PINS
    echo "$ZIG_PINS" >"$CROSS_VENV/.stamp"
  fi
}

# Debian's cargo and rustc (not rustup's proxies in ~/.cargo/bin); the venv first so that
# cargo-zigbuild finds `python3 -m ziglang`.
export PATH="$CROSS_VENV/bin:/usr/bin:$PATH"
export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
unset RUSTUP_TOOLCHAIN RUSTFLAGS CARGO_BUILD_TARGET
# Run aarch64 programs against the multiarch libc6:arm64 in /. (The older glibc of
# libc6-arm64-cross in /usr/aarch64-linux-gnu hangs in pthread_create under qemu 7.2.)
QEMU=(qemu-aarch64 -L /)
