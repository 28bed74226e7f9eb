#!/usr/bin/env bash
# Cross-builds brenier for aarch64-unknown-linux-gnu on x86_64 and tests it under qemu-user:
# the runtime's test suite (built with the cuda feature, which must then say why CUDA is
# unavailable instead of failing), the runtime without cuda, the `brenier` binary's selftest on
# the shipped demo bundle, the C example against the aarch64 libbrenier.so (its output the
# CLI's, bit for bit), and that no binary needs a glibc newer than the oldest device
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
# brenier-capi is in both selections so the C library below builds from the same artifacts.
echo "== runtime and CLI without cuda for $triple (glibc $glibc)"
cargo-zigbuild test --target "$zig_target" -p brenier -p brenier-cli -p brenier-capi --no-run

# One build for the runtime's tests and the binary, so Cargo resolves one feature set and tract
# compiles once for aarch64; the runtime's test executables then run under qemu by path (the
# CLI's own tests spawn its binary, which only a binfmt-registered qemu could run).
echo "== runtime tests and the brenier binary for $triple (glibc $glibc, feature cuda)"
cargo-zigbuild test --target "$zig_target" -p brenier -p brenier-cli -p brenier-capi --features brenier-cli/cuda --no-run \
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

# The C library: the cuda build's packages and features again, all targets (so dev-dependency
# features resolve as in that test build): only libbrenier.so and .a are new.
echo "== the C example against the aarch64 libbrenier.so under qemu, against the CLI's bits"
cargo-zigbuild build --target "$zig_target" -p brenier -p brenier-cli -p brenier-capi --features brenier-cli/cuda --all-targets
lib="target/$triple/debug"
in=target/aarch64-c-in.npy
# The first 2 images of the calibration set (float32 .npy, format 1.0), in model space: under
# qemu one image takes ~12 s per 20 network evaluations.
python3 - assets/demo.calib/sources.npy "$in" 2 <<'PY'
import ast, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = open(src, "rb").read()
hl = int.from_bytes(b[8:10], "little")
h = ast.literal_eval(b[10:10 + hl].decode("latin1"))
assert b[6] == 1 and h["descr"] == "<f4" and not h["fortran_order"], h
per = 4
for d in h["shape"][1:]:
    per *= d
head = str({"descr": "<f4", "fortran_order": False, "shape": (n, *h["shape"][1:])})
head += " " * (63 - (10 + len(head)) % 64) + "\n"
open(dst, "wb").write(b[:8] + len(head).to_bytes(2, "little") + head.encode("latin1") + b[10 + hl:10 + hl + n * per])
PY
"$venv/bin/python" -m ziglang cc -target "aarch64-linux-gnu.$glibc" -std=c99 -Wall -Wextra -Werror -I capi/include \
  examples/c/translate.c -L "$lib" -lbrenier -o target/aarch64-translate
LD_LIBRARY_PATH="$lib" qemu-aarch64 target/aarch64-translate assets/demo.brn "$in" target/aarch64-c-out.f32 10
qemu-aarch64 "$bin" translate --bundle assets/demo.brn --input "$in" --output target/aarch64-cli-out.npy --steps 10 --quiet
python3 - target/aarch64-c-out.f32 target/aarch64-cli-out.npy <<'PY'
import sys
c, cli = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
hl = int.from_bytes(cli[8:10], "little")
assert len(c) == 2 * 784 * 4 and c == cli[10 + hl:], "the C example's output differs from the CLI's"
print("the C example's 2 images equal the CLI's bit for bit")
PY

echo "== glibc needed (at most $glibc)"
worst=0.0
for f in "$bin" "$lib/libbrenier.so" $(find "target/$triple/debug/deps" -maxdepth 1 -type f -executable -name 'brenier-*'); do
  need=$(readelf -V --wide "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  worst=$(printf '%s\n%s\n' "$worst" "${need:-0.0}" | sort -V | tail -1)
done
echo "newest glibc symbol version needed: $worst"
if [ "$(printf '%s\n%s\n' "$worst" "$glibc" | sort -V | tail -1)" != "$glibc" ]; then
  echo "error: the aarch64 binaries need glibc $worst, newer than $glibc (JetPack 5)" >&2
  exit 1
fi
