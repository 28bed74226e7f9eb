#!/usr/bin/env bash
# What the C and Python interfaces cost over the Rust API, side by side: one translation (the
# demo bundle's 8 inputs, OT-ALD, K = 10, one batch, THREADS host threads) timed in a loop by
# each interface's own program (translate_loop.{rs,c,py}: WARMUP untimed calls, then CALLS timed
# ones, each a fresh process), for ROUNDS rounds with the three in a rotating order, so drift on
# a shared machine falls on all three alike. Writes benches/results/interfaces.json: each
# interface's median call per round, and its ratio to Rust's in the same round.
# Usage: benches/interfaces/run.sh [ROUNDS [CALLS [THREADS]]]   (defaults 6, 30, 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-6}
calls=${2:-30}
threads=${3:-1}
warmup=3
out=benches/results/interfaces.json

# One release build for all three. The extension's one-package build (maturin) resolves the
# shared crates as this selection does (unify/), so it finds them built. The variable is
# maturin's (no libpython link), set here so pyo3 builds once.
source scripts/python-env.sh
PYO3_BUILD_EXTENSION_MODULE=1 PYO3_PYTHON="$venv/bin/python" cargo build --release --quiet \
  -p brenier-benches -p brenier-capi -p brenier-py --bins --lib
install_wheel release

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -std=c99 -Wall -Wextra -Werror -I capi/include benches/interfaces/translate_loop.c \
  -L target/release -lbrenier -Wl,-rpath,"$PWD/target/release" -o "$tmp/translate_loop_c"
"$venv/bin/python" -c "import brenier, numpy as np, sys; np.save(sys.argv[1], brenier.Bundle('assets/demo.brn').read_images('assets/demo-inputs'))" "$tmp/in.npy"

run_one() {
  local args=(assets/demo.brn "$tmp/in.npy" "$calls" "$warmup" "$threads")
  case $1 in
    rust) target/release/translate_loop "${args[@]}" ;;
    c) "$tmp/translate_loop_c" "${args[@]}" ;;
    python) "$venv/bin/python" benches/interfaces/translate_loop.py "${args[@]}" ;;
  esac
}

order=(rust c python)
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < 3; i++)); do
    iface=${order[$(((r + i) % 3))]}
    run_one "$iface" >"$tmp/round$r-$iface.json"
  done
  echo "round $((r + 1))/$rounds done" >&2
done

"$venv/bin/python" - "$tmp" "$rounds" "$calls" "$warmup" "$threads" "$out" <<'PY'
import json, os, platform, statistics, sys
sys.path.insert(0, "benches/peers")
from provenance import commit

tmp, rounds, calls, warmup, threads, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
med = {i: [statistics.median(json.load(open(f"{tmp}/round{r}-{i}.json"))["seconds"]) for r in range(rounds)]
       for i in ("rust", "c", "python")}
def spread(xs):
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}
ratios = {i: [a / b for a, b in zip(med[i], med["rust"])] for i in ("c", "python")}
head, changed = commit()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
result = {
    "what": "one translate call (8 demo inputs, OT-ALD, K = 10, one batch) through each interface; "
            "per round, the median of CALLS timed calls in a fresh process; ratios against Rust's median in the same round",
    "command": "benches/interfaces/run.sh " + " ".join(sys.argv[2:3] + sys.argv[3:4] + sys.argv[5:6]),
    "commit": head, "changed_files": changed,
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "threads": threads},
    "rounds": rounds, "calls_per_round": calls, "warmup_calls": warmup,
    "median_call_ms": {i: [round(s * 1e3, 3) for s in v] for i, v in med.items()},
    "ratio_to_rust": {i: {k: round(x, 4) for k, x in spread(v).items()} for i, v in ratios.items()},
    "ratio_to_rust_per_round": {i: [round(x, 4) for x in v] for i, v in ratios.items()},
    # Issue 21's bound on an interface's cost, judged on the median over rounds.
    "target_ratio": 1.02,
    "met": {i: statistics.median(v) <= 1.02 for i, v in ratios.items()},
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
for i in ("c", "python"):
    s = result["ratio_to_rust"][i]
    print(f"{i:>6} / rust: median {s['median']:.4f} (min {s['min']:.4f}, max {s['max']:.4f}) over {rounds} rounds;"
          f" target <= 1.02: {'met' if result['met'][i] else 'NOT met'}")
print(f"rust median call: {statistics.median(med['rust']) * 1e3:.2f} ms; wrote {out}")
PY
