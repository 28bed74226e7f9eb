#!/usr/bin/env bash
# The intra-op gate's evidence: one image per evaluation on THREADS threads with tract's
# operators split across the pool (BRENIER_INTRA_OP=on) and not (off), side by side, for both
# networks of each bundle, alternating on/off ROUNDS times; ms per evaluation (median of REPEAT)
# to benches/results/intra-op.json. The gate (runtime/src/backend/intra_op.rs) should pick the
# faster setting per network.
# Usage: benches/peers/intra_op.sh [BUNDLE=INPUT.npy ...]
#   default: the demo bundle, and the 64×64 pair of benches/byo when benches/byo/run.sh made it.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2} REPEAT=${REPEAT:-20} ROUNDS=${ROUNDS:-3}
RESULT=${RESULT:-benches/results/intra-op.json}
if [ -z "${BRENIER:-}" ]; then
    cargo build --release --quiet -p brenier-train -p brenier-cli
fi
B=${BRENIER:-target/release/brenier}
PAIRS=("$@")
if [ ${#PAIRS[@]} -eq 0 ]; then
    PAIRS=(assets/demo.brn=assets/demo.calib/sources.npy)
    [ -f out/byo/adm64.brn ] && PAIRS+=(out/byo/adm64.brn=out/byo/sources.npy)
fi
OUT=out/intra-op
mkdir -p "$OUT"
rm -f "$OUT"/*.json
for pair in "${PAIRS[@]}"; do
    bundle=${pair%%=*} input=${pair#*=}
    name=$(basename "$bundle" .brn)
    for net in a b; do
        for round in $(seq "$ROUNDS"); do
            for mode in on off; do
                BRENIER_INTRA_OP=$mode RUST_LOG=brenier::backend::cpu=debug "$B" bench --bundle "$bundle" --net "$net" \
                    --batch 1 --threads "$THREADS" --repeat "$REPEAT" --input "$input" --eval-only --json \
                    > "$OUT/$name-$net-$mode-$round.json" 2> "$OUT/$name-$net-$mode-$round.log"
            done
        done
    done
done
python3 - "$OUT" "$RESULT" "$THREADS" "$REPEAT" "$ROUNDS" "benches/peers/intra_op.sh $*" "${PAIRS[@]}" <<'PY'
import json, re, statistics, sys
sys.path.insert(0, "benches/peers")
from provenance import commit
out, result, threads, repeat, rounds, command, *pairs = sys.argv[1:]
rows = []
for pair in pairs:
    bundle = pair.split("=", 1)[0]
    name = bundle.rsplit("/", 1)[-1].removesuffix(".brn")
    for net in "ab":
        row = {"bundle": bundle, "net": net}
        for mode in ("on", "off"):
            runs = [json.load(open(f"{out}/{name}-{net}-{mode}-{r}.json"))["network_eval"]["p50_ms"]
                    for r in range(1, int(rounds) + 1)]
            row[f"{mode}_ms"] = statistics.median(runs)
            row[f"{mode}_runs_ms"] = runs
        # what the gate decided, from the load log of an unforced run's twin: the count is logged
        log = open(f"{out}/{name}-{net}-off-1.log").read()
        row["gfma_per_image"] = float(re.search(r"([0-9.]+) G multiply-adds per image", log).group(1))
        row["on_over_off"] = round(row["on_ms"] / row["off_ms"], 3)
        rows.append(row)
        print(f"{bundle} net {net}: {row['gfma_per_image']:.3f} G multiply-adds per image; split {row['on_ms']:.2f} ms, "
              f"one thread {row['off_ms']:.2f} ms per evaluation (on/off {row['on_over_off']:.2f})")
c, modified = commit()
json.dump({"command": command, "commit": c, "modified": modified, "threads": int(threads), "repeat": int(repeat),
           "rounds": int(rounds), "batch": 1, "nets": rows}, open(result, "w"), indent=1)
print(f"wrote {result}")
PY
