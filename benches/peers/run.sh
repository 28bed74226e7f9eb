#!/usr/bin/env bash
# Peer benchmark: brenier's CPU backend against onnxruntime on the same ONNX files, the same input
# images and the same thread count, in one run. Prints ms per network evaluation at batch 1, 4, 16
# and the ratio brenier/onnxruntime, then OT-ALD against DDIB(T=999, K=100) at equal quality from
# the bundle's calibration record (NFE ratio and time ratio).
# Usage: benches/peers/run.sh [BUNDLE] [THREADS]   (default: assets/demo.brn, 1 thread)
# Installs onnxruntime and numpy from PyPI into target/peers-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${1:-assets/demo.brn}
THREADS=${2:-1}
BATCHES=${BATCHES:-1,4,16}
REPEAT=${REPEAT:-20}
OUT=out/peers
mkdir -p "$OUT"
VENV=target/peers-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet onnxruntime numpy
fi
# BRENIER=path/to/brenier skips the build (e.g. a binary built for the device being compared).
if [ -z "${BRENIER:-}" ]; then
    cargo build --release --quiet -p brenier-cli
fi
B=${BRENIER:-target/release/brenier}
SET=${BUNDLE%.brn}.calib
INPUT=$SET/sources.npy
[ -f "$INPUT" ] || { echo "no $INPUT: the peer benchmark feeds both runtimes the calibration set's images" >&2; exit 1; }
"$B" inspect "$BUNDLE" --json > "$OUT/inspect.json"
for net in a b; do
    "$B" inspect "$BUNDLE" --extract "net.$net" --output "$OUT/net_$net.onnx" >/dev/null
done
T=$("$VENV/bin/python" -c "import json;print(json.load(open('$OUT/inspect.json'))['manifest']['t_encode'])")
echo "network evaluation, ms (median of $REPEAT), $THREADS thread(s), t = $T, input $INPUT"
printf "%-5s %-6s %12s %12s %16s\n" net batch brenier onnxruntime brenier/ort
for net in a b; do
    ort_json=$("$VENV/bin/python" benches/peers/ort_bench.py --onnx "$OUT/net_$net.onnx" --input "$INPUT" \
        --batch "$BATCHES" --threads "$THREADS" --repeat "$REPEAT" --t "$T")
    for b in ${BATCHES//,/ }; do
        br_json=$("$B" bench --bundle "$BUNDLE" --net "$net" --batch "$b" --threads "$THREADS" --repeat "$REPEAT" \
            --input "$INPUT" --eval-only --json)
        "$VENV/bin/python" - "$net" "$b" "$br_json" "$ort_json" <<'PY'
import json, sys
net, b, br, ort = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
mb, mo = br["network_eval"]["p50_ms"], ort["ms"][b]
print(f"{net:<5} {b:<6} {mb:12.2f} {mo:12.2f} {mb / mo:15.2f}x")
PY
    done
done
"$VENV/bin/python" benches/peers/equal_quality.py "$OUT/inspect.json"
