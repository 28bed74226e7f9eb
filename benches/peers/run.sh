#!/usr/bin/env bash
# Peer benchmark: brenier's CPU backend against onnxruntime on the same ONNX files, the same input
# images and the same thread count, in one run. Prints ms per network evaluation at batch 1, 4, 16
# and the ratio brenier/onnxruntime, then OT-ALD against DDIB at equal quality from the bundle's
# calibration record (against DDIB at T=999, K=100 and against the cheapest DDIB point of OT-ALD's
# quality: NFE and time ratios; benches/peers/equal_quality.py), and writes all of it to
# benches/results/peers-<THREADS>t.json (the file the README quotes).
# Also times bundle open to first ε against onnxruntime's session creation to first result (one
# image, each the first in its process).
# Usage: benches/peers/run.sh [BUNDLE] [THREADS]   (default: assets/demo.brn, 1 thread)
#   INPUT=x.npy  images [N,C,H,W] in model space (default: the calibration set's sources.npy)
#   RESULT=file  where the JSON goes (default: benches/results/peers-<THREADS>t.json)
# A bundle without a calibration record gets no equal-quality comparison (recorded as skipped).
# Installs onnxruntime and numpy from PyPI into target/peers-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${1:-assets/demo.brn}
THREADS=${2:-1}
BATCHES=${BATCHES:-1,4,16}
REPEAT=${REPEAT:-20}
OUT=out/peers
RESULT=${RESULT:-benches/results/peers-${THREADS}t.json}
mkdir -p "$OUT" "$(dirname "$RESULT")"
VENV=target/peers-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet onnxruntime numpy
fi
# BRENIER=path/to/brenier skips the build (benches/peers/common.sh).
source benches/peers/common.sh
SET=${BUNDLE%.brn}.calib
INPUT=${INPUT:-$SET/sources.npy}
[ -f "$INPUT" ] || { echo "no $INPUT: the peer benchmark feeds both runtimes the calibration set's images (or INPUT=x.npy)" >&2; exit 1; }
"$B" inspect "$BUNDLE" --json > "$OUT/inspect.json"
for net in a b; do
    "$B" inspect "$BUNDLE" --extract "net.$net" --output "$OUT/net_$net.onnx" >/dev/null
done
T=$("$VENV/bin/python" -c "import json;print(json.load(open('$OUT/inspect.json'))['manifest']['t_encode'])")
rm -f "$OUT"/ort_*.json "$OUT"/brenier_*.json
# Each batch size runs in both runtimes back to back (onnxruntime, then brenier, each a fresh
# process), so a shared machine's slow spells, which last minutes, fall on both sides of a ratio.
for net in a b; do
    for b in ${BATCHES//,/ }; do
        "$VENV/bin/python" benches/peers/ort_bench.py --onnx "$OUT/net_$net.onnx" --input "$INPUT" \
            --batch "$b" --threads "$THREADS" --repeat "$REPEAT" --t "$T" > "$OUT/ort_${net}_$b.json"
        "$B" bench --bundle "$BUNDLE" --net "$net" --batch "$b" --threads "$THREADS" --repeat "$REPEAT" \
            --input "$INPUT" --eval-only --json > "$OUT/brenier_${net}_$b.json"
    done
done
"$VENV/bin/python" benches/peers/equal_quality.py "$OUT/inspect.json" > "$OUT/equal_quality.json"
# The command as run, with the settings that differ from the defaults.
CMD="benches/peers/run.sh $BUNDLE $THREADS"
[ "$BATCHES" = 1,4,16 ] || CMD="BATCHES=$BATCHES $CMD"
[ "$RESULT" = "benches/results/peers-${THREADS}t.json" ] || CMD="RESULT=$RESULT $CMD"
[ "$INPUT" = "$SET/sources.npy" ] || CMD="INPUT=$INPUT $CMD"
"$VENV/bin/python" - "$OUT" "$RESULT" "$BUNDLE" "$THREADS" "$REPEAT" "$T" "$INPUT" "$BATCHES" "$CMD" <<'PY'
import json, sys
out, result, bundle, threads, repeat, t, inp, batches, command = sys.argv[1:]
rows = []
for net in "ab":
    for b in batches.split(","):
        rows.append({"net": net, "batch": int(b), "brenier": json.load(open(f"{out}/brenier_{net}_{b}.json")),
                     "ort": json.load(open(f"{out}/ort_{net}_{b}.json"))})
# Open to first ε: brenier's batch-1 run (a fresh process) against onnxruntime's first session.
first = []
if "1" not in batches.split(","):
    print("open to first ε not measured: BATCHES has no batch of 1")
for net in "ab" if "1" in batches.split(",") else "":
    mb = json.load(open(f"{out}/brenier_{net}_1.json"))["open_to_first_eps_ms"]
    mo = json.load(open(f"{out}/ort_{net}_1.json"))["open_to_first_ms"]
    if mb is None:  # a memory budget's probe ran the networks first (brenier bench says so)
        continue
    first.append({"net": net, "brenier_ms": mb, "onnxruntime_ms": mo, "ratio": mb / mo})
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
sys.path.insert(0, "benches/peers")
from provenance import commit
commit, modified = commit()
table = []
print(f"network evaluation, ms (median of {repeat}), {threads} thread(s), t = {t}, input {inp}")
print(f"{'net':<5} {'batch':<6} {'brenier':>12} {'onnxruntime':>12} {'brenier/ort':>16}")
for r in rows:
    mb, mo = r["brenier"]["network_eval"]["p50_ms"], r["ort"]["ms"][str(r["batch"])]
    table.append({"net": r["net"], "batch": r["batch"], "brenier_ms": mb, "onnxruntime_ms": mo, "ratio": mb / mo})
    print(f"{r['net']:<5} {r['batch']:<6} {mb:12.2f} {mo:12.2f} {mb / mo:15.2f}x")
print(f"\nopen to first result, one image, ms")
for f in first:
    print(f"{f['net']:<5} {'':<6} {f['brenier_ms']:12.1f} {f['onnxruntime_ms']:12.1f} {f['ratio']:15.2f}x")
eq = json.load(open(f"{out}/equal_quality.json"))
ratios = [x["ratio"] for x in table]
if "skipped" in eq:
    print(f"equal quality: skipped, {eq['skipped']}")
summary = {
    "command": command,
    "bundle": bundle, "threads": int(threads), "repeat": int(repeat), "t": int(t), "input": inp,
    "cpu": cpu, "brenier_commit": commit, "modified": modified, "onnxruntime": rows[0]["ort"]["onnxruntime"],
    "network_eval": table, "ratio_min": min(ratios), "ratio_max": max(ratios), "open_to_first_eps": first,
    "equal_quality": eq,
}
json.dump(summary, open(result, "w"), indent=2)
print(f"\nbrenier/onnxruntime per network evaluation: {min(ratios):.2f}-{max(ratios):.2f}x")
for key, what in (("papers_baseline", "DDIB at T=999, K=100"), ("cheapest_ddib", "the cheapest DDIB of equal quality")):
    c = eq.get(key)
    if c:
        print(f"equal quality vs {what} (calibration record): DDIB T={c['ddib']['t']} K={c['ddib']['k']} "
              f"{c['ddib']['nfe']} NFE, Fréchet {c['ddib']['frechet']:.2f} vs OT-ALD K={c['ot_ald']['k']} "
              f"{c['ot_ald']['nfe']} NFE, Fréchet {c['ot_ald']['frechet']:.2f}: {c['nfe_ratio']:.1f}x fewer NFE, "
              f"{c['time_ratio']:.1f}x less time")
print(f"wrote {result}")
PY
