#!/usr/bin/env bash
# The CUDA path's check, prepared so that the first machine with an NVIDIA GPU runs it in under
# 10 minutes from executables built beforehand (anywhere: no GPU and no CUDA toolkit needed).
#
#   scripts/gpu-check.sh build [DIR]            the brenier binary and the CUDA test executables,
#                                               with --features cuda, for this machine's
#                                               architecture (x86_64: a workstation GPU)
#   scripts/gpu-check.sh build-aarch64 [DIR]    the same for a Jetson, with the cross toolchain of
#                                               scripts/cross-aarch64.sh (glibc 2.31)
#   scripts/gpu-check.sh run [DIR]              on the GPU machine, from DIR: every check below,
#                                               into DIR/results.json (exit 1 if any failed)
#
# DIR (default target/gpu-check) holds the stripped executables, the demo bundle and files.txt.
# What `run` checks, each step with its own time limit and the whole run held under 9.5 minutes
# (steps past that are recorded as not run):
#   device      nvidia-smi's name, memory, driver and compute capability (on a Jetson without it,
#               the device-tree model; informational); brenier's probe and the network nodes tract
#               keeps on the CPU (inspect --backend cuda)
#   nvrtc       the kernels compile with the machine's NVRTC for sm_72, sm_87 and sm_90
#               (runtime/tests/nvrtc_compile.rs); the backend itself compiles them for the
#               device's own sm at first use, in every step below
#   suite       the CUDA rows of the shared backend suite (tests/tests/backend_suite.rs:
#               cuda_f32::*, cuda_f16::*, 12 tests), which fail rather than skip
#               (BRENIER_REQUIRE_CUDA=1): OT assignment, soft map and DDIM step against
#               brute-force f64 references, the oracle networks against their closed form, a
#               whole OT-ALD translation against an f64 pipeline on the closed form
#   selftest    brenier selftest --backend cuda on the demo bundle in f32 and f16 (f16 checks
#               without a recorded f16 figure report SKIP: the record was made on an x86_64 CPU)
#   bench       brenier bench at batch 1, 4 and 16 on cuda (f16) next to the CPU (f32), and the
#               memory estimate against measured peaks on cuda (bench --memory)
# The GPU machine needs the NVIDIA driver, cuBLAS, NVRTC and cuDNN 9 for CUDA 12 (README,
# "Deploy on a Jetson"), and python3 to write the results file.
set -euo pipefail
mode=${1:-}
# DIR is taken from where the script is called; the script then works from the repository root.
DIR=$(realpath -m "${2:-$(dirname "$0")/../target/gpu-check}")
cd "$(dirname "$0")/.."
SUITE_TESTS=12

build() { # CARGO (cargo or cargo-zigbuild) and TARGET_ARGS (empty or --target …) are set by the caller
    mkdir -p "$DIR"
    $CARGO build --release "${TARGET_ARGS[@]}" -p brenier-cli --features cuda
    # Same package selection and features as .ci/run's CUDA step, so tract compiles once.
    $CARGO test "${TARGET_ARGS[@]}" --workspace --features brenier/cuda,brenier-tests/cuda --test nvrtc_compile \
        --test backend_suite --no-run --message-format=json > "$DIR/build.json"
    : > "$DIR/files.txt"
    for t in backend_suite nvrtc_compile; do
        exe=$(python3 - "$DIR/build.json" "$t" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[2] and m.get("executable"):
        print(m["executable"])
PY
)
        exe=$(echo "$exe" | tail -1)
        [ -n "$exe" ] || { echo "no test executable for $t" >&2; exit 1; }
        cp "$exe" "$DIR/$t"
        echo "$t" >> "$DIR/files.txt"
    done
    cp "$RELEASE_DIR/brenier" "$DIR/brenier"
    cp assets/demo.brn "$DIR/demo.brn"
    printf 'brenier\ndemo.brn\n' >> "$DIR/files.txt"
    $STRIP "$DIR/brenier" "$DIR/backend_suite" "$DIR/nvrtc_compile" 2>/dev/null || true
    rm -f "$DIR/build.json"
    echo "built into $DIR ($(du -sh "$DIR" | cut -f1)); on the GPU machine: scripts/gpu-check.sh run $DIR"
    cat "$DIR/files.txt"
}

case $mode in
build)
    CARGO=cargo TARGET_ARGS=() RELEASE_DIR=target/release STRIP=strip
    build
    ;;
build-aarch64)
    source scripts/cross-env.sh
    # tests/build.rs compiles the CUDA host shim as C++; zig's C++ compiler brings libc++.
    export CXXSTDLIB=c++
    CARGO=cargo-zigbuild TARGET_ARGS=(--target "$zig_target") RELEASE_DIR="target/$triple/release"
    STRIP="$(command -v aarch64-linux-gnu-strip || echo true)"
    build
    ;;
run)
    [ -f "$DIR/files.txt" ] || { echo "no $DIR/files.txt: run scripts/gpu-check.sh build (or build-aarch64) first" >&2; exit 1; }
    while read -r f; do [ -e "$DIR/$f" ] || { echo "missing $DIR/$f: run build first" >&2; exit 1; }; done < "$DIR/files.txt"
    command -v python3 >/dev/null || { echo "python3 is needed to write the results" >&2; exit 1; }
    out=$DIR/steps
    rm -rf "$out" && mkdir -p "$out"
    B=$DIR/brenier
    BUNDLE=$DIR/demo.brn
    start=$SECONDS
    budget=570
    # step NAME LIMIT_S COMMAND...: output to $out/NAME.out and .err, "exit seconds" to .status;
    # a step that would run past the whole run's budget is recorded as not run (exit 125).
    step() {
        local name=$1 limit=$2; shift 2
        local left=$((budget - (SECONDS - start))) t0=$SECONDS rc=0
        if (( left < 5 )); then
            echo "125 0" > "$out/$name.status"; : > "$out/$name.out"; echo "not run: time budget spent" > "$out/$name.err"
            echo "== $name: not run (time budget spent)"
            return
        fi
        (( limit > left )) && limit=$left
        echo "== $name: $*"
        timeout "$limit" "$@" > "$out/$name.out" 2> "$out/$name.err" || rc=$?
        echo "$rc $((SECONDS - t0))" > "$out/$name.status"
        echo "== $name: exit $rc in $((SECONDS - t0)) s"
    }
    # Informational: JetPack 5 has no nvidia-smi, so a Jetson names itself through the device tree.
    step device-info 20 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null || tr -d "\0" < /proc/device-tree/model' 
    step device-probe 60 "$B" inspect "$BUNDLE" --backend cuda --json
    step nvrtc 60 env BRENIER_REQUIRE_NVRTC=1 "$DIR/nvrtc_compile" --test-threads 1
    step suite 180 env BRENIER_REQUIRE_CUDA=1 "$DIR/backend_suite" cuda_ --test-threads 1
    for p in f32 f16; do
        step "selftest-$p" 60 "$B" selftest --bundle "$BUNDLE" --backend cuda --precision "$p" --json
    done
    for b in 1 4 16; do
        step "bench-cuda-$b" 30 "$B" bench --bundle "$BUNDLE" --backend cuda --precision f16 --batch "$b" --repeat 10 --json
        step "bench-cpu-$b" 30 "$B" bench --bundle "$BUNDLE" --backend cpu --batch "$b" --repeat 5 --json
    done
    step memory-cuda 60 "$B" bench --bundle "$BUNDLE" --backend cuda --precision f16 --memory --memory-batches 1,4,16 --json
    python3 - "$out" "$DIR/results.json" "$((SECONDS - start))" "$SUITE_TESTS" <<'PY'
import json, os, re, sys
out, dest, total, suite_tests = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
steps, failed = {}, []
for name in sorted(f[:-7] for f in os.listdir(out) if f.endswith(".status")):
    rc, secs = map(int, open(os.path.join(out, name + ".status")).read().split())
    text = open(os.path.join(out, name + ".out")).read()
    err = open(os.path.join(out, name + ".err")).read()
    try:
        body = json.loads(text[text.index("{"):]) if "{" in text else text.strip()
    except ValueError:
        body = text.strip()
    entry = {"exit": rc, "seconds": secs, "output": body, "stderr_tail": err[-2000:]}
    if name in ("suite", "nvrtc"):
        tests = dict(re.findall(r"^test (\S+) \.\.\. (\w+)", text, re.M))
        entry["tests"] = tests
        # A filter that matched nothing passes with zero tests: that is a failure here.
        if name == "suite" and len(tests) < suite_tests:
            entry["problem"] = f"{len(tests)} CUDA tests ran, {suite_tests} expected"
            rc = rc or 1
    steps[name] = entry
    if rc != 0 and name != "device-info":
        failed.append(name)
json.dump({"total_seconds": total, "failed": failed, "steps": steps}, open(dest, "w"), indent=2)
print(f"wrote {dest}: {len(steps)} steps in {total} s, failed: {failed or 'none'}")
sys.exit(1 if failed else 0)
PY
    ;;
*)
    echo "usage: scripts/gpu-check.sh build [DIR] | build-aarch64 [DIR] | run [DIR]" >&2
    exit 2
    ;;
esac
