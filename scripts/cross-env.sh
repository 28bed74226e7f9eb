# Sourced by scripts/cross-aarch64.sh and scripts/gpu-check.sh: the aarch64 cross toolchain
# (Debian rustc-web with the arm64 std, cargo-zigbuild linking against the oldest device glibc),
# installed when missing; sets RUSTC, PATH, the qemu test runner, $triple, $glibc, $zig_target.
# See cross-aarch64.sh for why this toolchain.
triple=aarch64-unknown-linux-gnu
glibc=$(sed -n 's/^glibc = "\(.*\)"/\1/p' targets/jetson-xavier.toml)
min_rustc=1.91 # tract 0.23

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! dpkg -s libstd-rust-web-dev:arm64 rustc-web qemu-user >/dev/null 2>&1; then
  echo "== installing rustc-web, libstd-rust-web-dev:arm64, qemu-user (Debian)"
  as_root dpkg --add-architecture arm64
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    rustc-web libstd-rust-web-dev:arm64 qemu-user >/dev/null
fi
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
have=$($RUSTC --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$min_rustc" "$have" | sort -V | head -1)" != "$min_rustc" ]; then
  echo "error: $RUSTC is $have; tract 0.23 needs rustc >= $min_rustc (Debian bookworm-security's rustc-web 1.96 has it: apt-get update first)" >&2
  exit 1
fi
test -d "$($RUSTC --print sysroot)/lib/rustlib/$triple" || {
  echo "error: no $triple std for $RUSTC (install libstd-rust-web-dev:arm64)" >&2
  exit 1
}

venv=target/cross-venv
if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
  echo "== installing cargo-zigbuild and ziglang (PyPI) into $venv"
  python3 -m venv "$venv"
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install -q --disable-pip-version-check ziglang cargo-zigbuild
fi
export PATH="$PWD/$venv/bin:$PATH"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
zig_target="$triple.$glibc"

