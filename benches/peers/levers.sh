#!/usr/bin/env bash
# Where the CPU time goes, per operator family, in tract and in onnxruntime (one thread each, the
# same ONNX and image), and what opening from tract's NNEF form would save: benches/peers/levers.py
# on both networks of each bundle given, written to benches/results/tract-levers.json.
# Usage: benches/peers/levers.sh [BUNDLE=INPUT.npy ...]   (no arguments: the defaults below)
#   default: assets/demo.brn=assets/demo.calib/sources.npy, and the 64×64 pair of benches/byo
#   (out/byo/adm64.brn=out/byo/sources.npy) when benches/byo/run.sh has made it.
# Installs tract (the Python binding of the tract version in Cargo.lock), onnx, onnxruntime and numpy
# into target/peers-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
RESULT=${RESULT:-benches/results/tract-levers.json}
TRACT=$(awk '/^name = "tract-core"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
VENV=target/peers-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import tract, onnx, onnxruntime, numpy; assert tract.version() == '$TRACT'" 2>/dev/null ||
    "$VENV/bin/pip" install --quiet "tract==$TRACT" onnx onnxruntime numpy
source benches/peers/common.sh
default_pairs "$@"
OUT=out/levers
mkdir -p "$OUT"
rm -f "$OUT"/*.json
for pair in "${PAIRS[@]}"; do
    bundle=${pair%%=*} input=${pair#*=}
    name=$(basename "$bundle" .brn)
    T=$("$B" inspect "$bundle" --json | "$VENV/bin/python" -c "import json,sys;print(json.load(sys.stdin)['manifest']['t_encode'])")
    for net in a b; do
        "$B" inspect "$bundle" --extract "net.$net" --output "$OUT/$name-$net.onnx" >/dev/null
        echo "$name net $net" >&2
        "$VENV/bin/python" benches/peers/levers.py --onnx "$OUT/$name-$net.onnx" --input "$input" --t "$T" \
            > "$OUT/$name-$net.json"
    done
done
"$VENV/bin/python" - "$OUT" "$RESULT" "$TRACT" "benches/peers/levers.sh${*:+ $*}" "${PAIRS[@]}" <<'PY'
import json, sys
out, result, tract_version, command, *pairs = sys.argv[1:]
import onnxruntime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
sys.path.insert(0, "benches/peers")
from provenance import commit
commit, modified = commit()
nets = []
for pair in pairs:
    bundle, inp = pair.split("=", 1)
    name = bundle.rsplit("/", 1)[-1].removesuffix(".brn")
    for net in "ab":
        r = json.load(open(f"{out}/{name}-{net}.json"))
        tr, ox = r["tract"], r["onnxruntime"]
        ox.pop("nodes", None)  # per node: profile.sh's business
        op_ms = lambda ops, name: sum(o["ms"] for o in ops if o["op"] == name)
        po, pn = tr["prepare_from_onnx"], tr["prepare_from_nnef"]
        derived = {
            # tract's matrix products (mostly its convolutions; attention's products too where
            # there is some) against onnxruntime's convolutions, both from their profilers
            "tract_matmul_over_ort_conv": round(op_ms(tr["ops"], "OptMatMul") / op_ms(ox["ops"], "Conv"), 3),
            "nnef_saves_ms": round(po["parse_ms"] + po["typed_and_decluttered_ms"] - pn["nnef_load_ms"], 1),
        }
        nets.append({"bundle": bundle, "input": inp, "net": net, **r, **derived})
        top = lambda ops: ", ".join(f"{o['op']} {o['share']*100:.1f} %" for o in ops[:4])
        print(f"{bundle} net {net}: tract {tr['eval_ms']:.2f} ms ({top(tr['ops'])}); "
              f"onnxruntime {ox['eval_ms']:.2f} ms, profiled ({top(ox['ops'])}); "
              f"timestep embedding {ox['time_embedding_share']*100:.2f} % of onnxruntime's step")
        print(f"   tract's matrix products take {derived['tract_matmul_over_ort_conv']:.2f}x onnxruntime's convolutions; "
              f"opening from NNEF would save {derived['nnef_saves_ms']:.1f} ms")
        print(f"   open: ONNX parse {po['parse_ms']:.1f} + typed/decluttered {po['typed_and_decluttered_ms']:.1f} "
              f"+ optimised {po['optimised_ms']:.1f} ms; NNEF load {pn['nnef_load_ms']:.1f} + optimised "
              f"{pn['optimised_ms']:.1f} ms ({tr['nnef_bytes']/1e6:.1f} MB beside {tr['onnx_bytes']/1e6:.1f} MB of ONNX; "
              f"max |Δε| {pn['max_abs_diff_vs_onnx']:.2g})")
json.dump({"command": command, "commit": commit, "modified": modified, "cpu": cpu, "tract": tract_version,
           "onnxruntime": onnxruntime.__version__, "threads": 1, "nets": nets}, open(result, "w"), indent=1)
print(f"wrote {result}")
PY
