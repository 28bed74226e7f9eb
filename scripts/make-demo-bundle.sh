#!/usr/bin/env bash
# Reproduces the shipped demo from scratch: trains the sneaker/boot ε-network, exports it twice,
# solves the OT maps, writes assets/demo.brn, the demo inputs and assets/demo-report.json,
# printing each stage's wall time. Needs the Debian packages below (installed if missing).
# Usage: scripts/make-demo-bundle.sh [RUN_DIR]   (default: a fresh run in out/demo-run)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-out/demo-run}
WORK=out/demo-build
mkdir -p "$WORK"
if ! dpkg -s dataset-fashion-mnist fonts-dejavu-core >/dev/null 2>&1; then
    sudo_cmd=$( [ "$(id -u)" = 0 ] && echo "" || echo sudo )
    $sudo_cmd apt-get install -y dataset-fashion-mnist fonts-dejavu-core
fi
stage() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "== $name: $((SECONDS - t0)) s" | tee -a "$WORK/stages.txt"; }
: > "$WORK/stages.txt"
stage build cargo build --release -p brenier-train -p brenier-cli
T=target/release/brenier-train
B=target/release/brenier
stage train "$T" train --classes 7,9 --steps 3000 --batch 64 --channels 32,64,64 --out "$RUN" --resume
stage onnx bash -c "$T onnx --run $RUN --class 7 -o $WORK/sneaker.onnx && $T onnx --run $RUN --class 9 -o $WORK/boot.onnx"
stage export "$B" export --net-a "$WORK/sneaker.onnx" --net-b "$WORK/boot.onnx" --name-a sneaker --name-b ankle-boot \
    --t 500 --steps 25 -o "$WORK/ddib.brn"
stage ot "$T" ot --bundle "$WORK/ddib.brn" --class-a 7 --class-b 9 --targets 640 --sources 640 --encode-steps 25 \
    --tol 0.1 --max-iters 600 --report assets/demo-ot-report.json -o assets/demo.brn
# A->B maps at the other encode times of the calibration sweep (T ablation, OT-ALD figure 3b).
for t in 100 250 750 999; do
    stage "ot t=$t" "$T" ot --bundle assets/demo.brn --t "$t" --maps 'a->b' --class-a 7 --class-b 9 --targets 640 \
        --sources 640 --encode-steps 25 --tol 0.1 --max-iters 600 --report "$WORK/ot-t$t.json" -o assets/demo.brn
done
stage inputs "$T" inputs --class 7 --count 8 -o assets/demo-inputs
stage calib-set "$T" calib-set --class-a 7 --class-b 9 --classifier ../fashion-classifier.onnx -o assets/demo.calib
stage report "$T" report --bundle assets/demo.brn --class-a 7 --class-b 9 --count 128 -o assets/demo-report.json
stage calibrate "$B" calibrate --bundle assets/demo.brn --report assets/demo.calibration
cat "$WORK/stages.txt"
