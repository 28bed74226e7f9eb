#!/usr/bin/env bash
# Cross-builds brenier for aarch64-unknown-linux-gnu on x86_64 and tests it under qemu-user:
# the runtime's test suite (built with the cuda feature, which must then say why CUDA is
# unavailable instead of failing), the runtime without cuda, the `brenier` binary's selftest on
# the shipped demo bundle, and that no binary needs a glibc newer than the oldest device
# profile's (targets/jetson-xavier.toml: 2.31, JetPack 5). Called by .ci/run; installs what it
# needs (Debian packages, PyPI packages into target/cross-venv).
#
# Why this toolchain: rustup cannot fetch the aarch64 std here, so the compiler is Debian's
# rustc-web with libstd-rust-web-dev:arm64 (bookworm-security, 1.96); linking with Debian's
# aarch64-linux-gnu-gcc would need GLIBC_2.34, so cargo-zigbuild links against glibc 2.31.
# Under qemu tract runs its generic arm64 kernels: timings here say nothing about a Jetson.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain and its environment (RUSTC, PATH with cargo-zigbuild, the qemu runner, $zig_target).
source scripts/cross-env.sh

# Without cuda first, with the same package selection as the cuda build below, so Cargo resolves
# the same features for tract and compiles it once; the cuda build then leaves its binary last.
echo "== runtime and CLI without cuda for $triple (glibc $glibc)"
cargo-zigbuild test --target "$zig_target" -p brenier -p brenier-cli --no-run

# One build for the runtime's tests and the binary, so Cargo resolves one feature set and tract
# compiles once for aarch64; the runtime's test executables then run under qemu by path (the
# CLI's own tests spawn its binary, which only a binfmt-registered qemu could run).
echo "== runtime tests and the brenier binary for $triple (glibc $glibc, feature cuda)"
cargo-zigbuild test --target "$zig_target" -p brenier -p brenier-cli --features brenier-cli/cuda --no-run \
  --message-format=json >target/cross-aarch64-build.json
tests=$(python3 - target/cross-aarch64-build.json <<'PY'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"] \
            and m["package_id"].split("#")[0].endswith("/runtime"):
        print(m["executable"])
PY
)
test -n "$tests" || { echo "error: no runtime test executables in the build output" >&2; exit 1; }
echo "== runtime tests under qemu-aarch64"
for t in $tests; do
  echo "-- $t"
  (cd runtime && qemu-aarch64 "$t")
done
echo "== the brenier binary under qemu: targets, selftest of the demo bundle, --backend cuda without a GPU"
bin="target/$triple/debug/brenier"
qemu-aarch64 "$bin" targets
qemu-aarch64 "$bin" selftest --bundle assets/demo.brn --threads 2
out=$(qemu-aarch64 "$bin" translate --bundle assets/demo.brn --backend cuda --input assets/demo-inputs/7-000.png \
  --output target/aarch64-cuda.png 2>&1) && { echo "error: --backend cuda succeeded under qemu" >&2; exit 1; }
echo "$out" | grep -q "CUDA backend cannot start" || { echo "error: unexpected --backend cuda failure: $out" >&2; exit 1; }
echo "--backend cuda without a GPU: $out"

echo "== glibc needed (at most $glibc)"
worst=0.0
for f in "$bin" $(find "target/$triple/debug/deps" -maxdepth 1 -type f -executable -name 'brenier-*'); do
  need=$(readelf -V --wide "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  worst=$(printf '%s\n%s\n' "$worst" "${need:-0.0}" | sort -V | tail -1)
done
echo "newest glibc symbol version needed: $worst"
if [ "$(printf '%s\n%s\n' "$worst" "$glibc" | sort -V | tail -1)" != "$glibc" ]; then
  echo "error: the aarch64 binaries need glibc $worst, newer than $glibc (JetPack 5)" >&2
  exit 1
fi
