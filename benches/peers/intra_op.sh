#!/usr/bin/env bash
# The intra-op gate's evidence: one image per evaluation on THREADS threads each way a one-piece
# run can spend them: every operator split across the pool (BRENIER_INTRA_OP=on), brenier's
# convolutions alone shared with the crew (kernels), one thread (off); side by side, for both
# networks of each bundle, the three in turn ROUNDS times; ms per evaluation (median of REPEAT,
# then the median and the range over rounds) to benches/results/intra-op.json, with what the
# gate (runtime/src/backend/intra_op.rs) chose for that network unforced and whether that
# was the fastest setting.
# Usage: benches/peers/intra_op.sh [BUNDLE=INPUT.npy ...]   (no arguments: the defaults below)
#   default: the demo bundle, and the 64×64 pair of benches/byo when benches/byo/run.sh made it.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2} REPEAT=${REPEAT:-20} ROUNDS=${ROUNDS:-3}
RESULT=${RESULT:-benches/results/intra-op.json}
source benches/peers/common.sh
default_pairs "$@"
OUT=out/intra-op
mkdir -p "$OUT"
rm -f "$OUT"/*.json
for pair in "${PAIRS[@]}"; do
    bundle=${pair%%=*} input=${pair#*=}
    name=$(basename "$bundle" .brn)
    for net in a b; do
        for round in $(seq "$ROUNDS"); do
            # Each round starts with the next mode, so that none always runs first.
            modes=(on kernels off on kernels)
            for mode in "${modes[@]:$((round % 3)):3}"; do
                BRENIER_INTRA_OP=$mode RUST_LOG=brenier::backend::cpu=debug "$B" bench --bundle "$bundle" --net "$net" \
                    --batch 1 --threads "$THREADS" --repeat "$REPEAT" --input "$input" --eval-only --json \
                    > "$OUT/$name-$net-$mode-$round.json" 2> "$OUT/$name-$net-$mode-$round.log"
            done
        done
        # Unforced: what the gate chooses (the load log carries the multiply-add count).
        BRENIER_INTRA_OP=auto RUST_LOG=brenier::backend::cpu=debug "$B" bench --bundle "$bundle" --net "$net" \
            --batch 1 --threads "$THREADS" --repeat 1 --input "$input" --eval-only --json \
            > "$OUT/$name-$net-auto.json" 2> "$OUT/$name-$net-auto.log"
    done
done
python3 - "$OUT" "$RESULT" "$THREADS" "$REPEAT" "$ROUNDS" "benches/peers/intra_op.sh${*:+ $*}" "${PAIRS[@]}" <<'PY'
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
        for mode in ("on", "kernels", "off"):
            runs = [json.load(open(f"{out}/{name}-{net}-{mode}-{r}.json"))["network_eval"]["p50_ms"]
                    for r in range(1, int(rounds) + 1)]
            row[f"{mode}_ms"] = statistics.median(runs)
            row[f"{mode}_runs_ms"] = runs
        auto = json.load(open(f"{out}/{name}-{net}-auto.json"))
        log = open(f"{out}/{name}-{net}-auto.log").read()
        row["gfma_per_run"] = float(re.search(r"([0-9.]+) G multiply-adds per run", log).group(1))
        mode_of = {"all": "on", "kernels": "kernels", "serial": "off"}
        row["gate_picks"] = mode_of[auto["one_piece"]]
        row["on_over_off"] = round(row["on_ms"] / row["off_ms"], 3)
        row["kernels_over_off"] = round(row["kernels_ms"] / row["off_ms"], 3)
        row["kernels_over_on"] = round(row["kernels_ms"] / row["on_ms"], 3)
        row["gate_picks_fastest"] = row["gate_picks"] == min(("on", "kernels", "off"), key=lambda m: row[f"{m}_ms"])
        rows.append(row)
        print(f"{bundle} net {net}: {row['gfma_per_run']:.3f} G multiply-adds per image; all split {row['on_ms']:.2f} ms "
              f"{row['on_runs_ms']}, kernels {row['kernels_ms']:.2f} ms {row['kernels_runs_ms']}, one thread "
              f"{row['off_ms']:.2f} ms {row['off_runs_ms']} per evaluation (on/off {row['on_over_off']:.2f}, "
              f"kernels/off {row['kernels_over_off']:.2f}, kernels/on {row['kernels_over_on']:.2f}); "
              f"the gate picks {row['gate_picks']}, the fastest: {row['gate_picks_fastest']}")
c, modified = commit()
json.dump({"command": command, "commit": c, "modified": modified, "threads": int(threads), "repeat": int(repeat),
           "rounds": int(rounds), "batch": 1, "nets": rows}, open(result, "w"), indent=1)
print(f"wrote {result}")
PY
