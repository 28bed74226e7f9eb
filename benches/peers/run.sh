#!/usr/bin/env bash
# Peer benchmark: brenier's CPU backend against onnxruntime on the same ONNX files, the same input
# images and the same thread count, in one run. Prints ms per network evaluation at batch 1, 4, 16
# and the ratio brenier/onnxruntime, then OT-ALD against DDIB at equal quality from the bundle's
# calibration record (against DDIB at T=999, K=100 and against the cheapest DDIB point of OT-ALD's
# quality: NFE and time ratios; benches/peers/equal_quality.py), and writes all of it to
# benches/results/peers-<THREADS>t.json (the file the README quotes).
# Also times bundle open to first ε against onnxruntime's session creation to first result (one
# image, each the first in its process).
# Every row is measured ROUNDS times, the rounds interleaved (all rows, then all rows again), and
# reports the median of its rounds' ratios with their range: one slow spell of a shared machine
# then moves one round of a row, not the row's figure, and the range shows how much it moved.
# Usage: benches/peers/run.sh [BUNDLE] [THREADS]   (default: assets/demo.brn, 1 thread)
#   INPUT=x.npy  images [N,C,H,W] in model space (default: the calibration set's sources.npy)
#   RESULT=file  where the JSON goes (default: benches/results/peers-<THREADS>t.json)
#   ROUNDS=n     rounds per row (default 3); REPEAT=n evaluations per process (default 20)
# A bundle without a calibration record gets no equal-quality comparison (recorded as skipped).
# Installs onnxruntime and numpy from PyPI into target/peers-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${1:-assets/demo.brn}
THREADS=${2:-1}
BATCHES=${BATCHES:-1,4,16}
REPEAT=${REPEAT:-20}
ROUNDS=${ROUNDS:-3}
# Any whole count of 1 or more runs; an odd one keeps each median a measured round rather than
# the mean of two.
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS=$ROUNDS: give a whole number of rounds, 1 or more" >&2; exit 1; }
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
# Within a round each batch size runs in both runtimes back to back (each a fresh process), so a
# slow spell, which lasts minutes, falls on both sides of a ratio; which runtime goes first
# alternates from round to round, so neither always meets the machine as the other left it.
for r in $(seq 1 "$ROUNDS"); do
    for net in a b; do
        for b in ${BATCHES//,/ }; do
            ort() {
                "$VENV/bin/python" benches/peers/ort_bench.py --onnx "$OUT/net_$net.onnx" --input "$INPUT" \
                    --batch "$b" --threads "$THREADS" --repeat "$REPEAT" --t "$T" > "$OUT/ort_${net}_${b}_$r.json"
            }
            brenier() {
                "$B" bench --bundle "$BUNDLE" --net "$net" --batch "$b" --threads "$THREADS" --repeat "$REPEAT" \
                    --input "$INPUT" --eval-only --json > "$OUT/brenier_${net}_${b}_$r.json"
            }
            if [ $((r % 2)) -eq 1 ]; then ort; brenier; else brenier; ort; fi
        done
    done
    echo "round $r of $ROUNDS done" >&2
done
"$VENV/bin/python" benches/peers/equal_quality.py "$OUT/inspect.json" > "$OUT/equal_quality.json"
# The command as run, with the settings that differ from the defaults.
CMD="benches/peers/run.sh $BUNDLE $THREADS"
[ "$BATCHES" = 1,4,16 ] || CMD="BATCHES=$BATCHES $CMD"
[ "$ROUNDS" = 3 ] || CMD="ROUNDS=$ROUNDS $CMD"
[ "$REPEAT" = 20 ] || CMD="REPEAT=$REPEAT $CMD"
[ "$RESULT" = "benches/results/peers-${THREADS}t.json" ] || CMD="RESULT=$RESULT $CMD"
[ "$INPUT" = "$SET/sources.npy" ] || CMD="INPUT=$INPUT $CMD"
"$VENV/bin/python" - "$OUT" "$RESULT" "$BUNDLE" "$THREADS" "$REPEAT" "$T" "$INPUT" "$BATCHES" "$CMD" "$ROUNDS" <<'PY'
import json, statistics, sys
out, result, bundle, threads, repeat, t, inp, batches, command, rounds = sys.argv[1:]
rounds = range(1, int(rounds) + 1)
median = statistics.median


def row(name, brenier, ort):
    """One row from its rounds: each runtime's median time, and the median and range of the
    rounds' ratios (each round's two runs ran back to back, so a ratio is taken within a round)."""
    ratios = [b / o for b, o in zip(brenier, ort)]
    return {**name, "brenier_ms": median(brenier), "onnxruntime_ms": median(ort), "ratio": median(ratios),
            "ratio_range": [min(ratios), max(ratios)], "rounds": [{"brenier_ms": b, "onnxruntime_ms": o}
                                                                  for b, o in zip(brenier, ort)]}


load = lambda side, net, b, r: json.load(open(f"{out}/{side}_{net}_{b}_{r}.json"))
table = []
for net in "ab":
    for b in batches.split(","):
        table.append(row({"net": net, "batch": int(b)},
                         [load("brenier", net, b, r)["network_eval"]["p50_ms"] for r in rounds],
                         [load("ort", net, b, r)["ms"][b] for r in rounds]))
# Open to first ε: brenier's batch-1 runs (each a fresh process) against onnxruntime's first
# session in each of its batch-1 processes.
first = []
if "1" not in batches.split(","):
    print("open to first ε not measured: BATCHES has no batch of 1")
for net in "ab" if "1" in batches.split(",") else "":
    mb = [load("brenier", net, 1, r)["open_to_first_eps_ms"] for r in rounds]
    if None in mb:  # a memory budget's probe ran the networks first (brenier bench says so)
        continue
    first.append(row({"net": net}, mb, [load("ort", net, 1, r)["open_to_first_ms"] for r in rounds]))
onnxruntime = load("ort", "a", batches.split(",")[0], 1)["onnxruntime"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
sys.path.insert(0, "benches/peers")
from provenance import commit
commit, modified = commit()
print(f"network evaluation, ms (median of {repeat} per process, median of {len(rounds)} rounds), "
      f"{threads} thread(s), t = {t}, input {inp}")
print(f"{'net':<5} {'batch':<6} {'brenier':>12} {'onnxruntime':>12} {'brenier/ort':>12}  rounds' range")
for x in table:
    lo, hi = x["ratio_range"]
    print(f"{x['net']:<5} {x['batch']:<6} {x['brenier_ms']:12.2f} {x['onnxruntime_ms']:12.2f} "
          f"{x['ratio']:11.2f}x  {lo:.2f}-{hi:.2f}x")
print(f"\nopen to first result, one image, ms")
for f in first:
    lo, hi = f["ratio_range"]
    print(f"{f['net']:<5} {'':<6} {f['brenier_ms']:12.1f} {f['onnxruntime_ms']:12.1f} {f['ratio']:11.2f}x  "
          f"{lo:.2f}-{hi:.2f}x")
eq = json.load(open(f"{out}/equal_quality.json"))
ratios = [x["ratio"] for x in table]
if "skipped" in eq:
    print(f"equal quality: skipped, {eq['skipped']}")
summary = {
    "command": command,
    "bundle": bundle, "threads": int(threads), "repeat": int(repeat), "rounds": len(rounds), "t": int(t),
    "input": inp,
    "cpu": cpu, "brenier_commit": commit, "modified": modified, "onnxruntime": onnxruntime,
    "network_eval": table, "ratio_min": min(ratios), "ratio_max": max(ratios), "open_to_first_eps": first,
    "equal_quality": eq,
}
json.dump(summary, open(result, "w"), indent=2)
print(f"\nbrenier/onnxruntime per network evaluation (rows' medians): {min(ratios):.2f}-{max(ratios):.2f}x")
for key, what in (("papers_baseline", "DDIB at T=999, K=100"), ("cheapest_ddib", "the cheapest DDIB of equal quality")):
    c = eq.get(key)
    if c:
        print(f"equal quality vs {what} (calibration record): DDIB T={c['ddib']['t']} K={c['ddib']['k']} "
              f"{c['ddib']['nfe']} NFE, Fréchet {c['ddib']['frechet']:.2f} vs OT-ALD K={c['ot_ald']['k']} "
              f"{c['ot_ald']['nfe']} NFE, Fréchet {c['ot_ald']['frechet']:.2f}: {c['nfe_ratio']:.1f}x fewer NFE, "
              f"{c['time_ratio']:.1f}x less time")
print(f"wrote {result}")
PY
