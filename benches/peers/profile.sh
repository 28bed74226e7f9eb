#!/usr/bin/env bash
# Where brenier's CPU time goes, node by node, beside onnxruntime's profile of the same ONNX, one
# image, one thread: `brenier bench --eval-only --profile` (brenier's own tract plan, its
# convolution operators included) and onnxruntime's profiler (ort_profile.py), for both
# networks of each bundle given. Each runtime's nodes are attributed to the ONNX node they came
# from, and the times are set side by side per ONNX operator (a Conv by its kernel size) and per
# convolution, to benches/results/op-profile.json. This is the per-operator answer to where the
# ratio of benches/results/peers-1t.json goes, which levers.sh (the published tract, without
# brenier's operators) cannot give.
# Usage: benches/peers/profile.sh [BUNDLE=INPUT.npy ...]   (no arguments: the defaults below)
#   default: the demo bundle, and the 64×64 pair of benches/byo when benches/byo/run.sh made it.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEAT=${REPEAT:-200}
RESULT=${RESULT:-benches/results/op-profile.json}
VENV=target/peers-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import onnx, onnxruntime, numpy" 2>/dev/null ||
    "$VENV/bin/pip" install --quiet onnx onnxruntime numpy
source benches/peers/common.sh
default_pairs "$@"
OUT=out/op-profile
mkdir -p "$OUT"
rm -f "$OUT"/*.json
for pair in "${PAIRS[@]}"; do
    bundle=${pair%%=*} input=${pair#*=}
    name=$(basename "$bundle" .brn)
    T=$("$B" inspect "$bundle" --json | "$VENV/bin/python" -c "import json,sys;print(json.load(sys.stdin)['manifest']['t_encode'])")
    for net in a b; do
        echo "$name net $net" >&2
        "$B" inspect "$bundle" --extract "net.$net" --output "$OUT/$name-$net.onnx" >/dev/null
        "$B" bench --bundle "$bundle" --net "$net" --batch 1 --threads 1 --repeat "$REPEAT" --input "$input" \
            --eval-only --profile --json > "$OUT/$name-$net-brenier.json"
        "$VENV/bin/python" - "$OUT/$name-$net.onnx" "$input" "$T" "$REPEAT" > "$OUT/$name-$net-ort.json" <<'PY'
import json, sys
import numpy as np
sys.path.insert(0, "benches/peers")
from ort_profile import ort_ops
onnx_path, inp, t, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.ascontiguousarray(np.load(inp)[:1].astype(np.float32))
print(json.dumps(ort_ops(onnx_path, x, np.array([t], dtype=np.int64), repeat)))
PY
    done
done
"$VENV/bin/python" - "$OUT" "$RESULT" "$REPEAT" "benches/peers/profile.sh${*:+ $*}" "${PAIRS[@]}" <<'PY'
import collections, json, sys
import onnx, onnxruntime
sys.path.insert(0, "benches/peers")
from provenance import commit
out, result, repeat, command, *pairs = sys.argv[1:]

def onnx_nodes(path):
    """ONNX node name → what it is: its op type, a Conv with its kernel size (Conv 3x3, Conv 1x1);
    and output name → node name."""
    g = onnx.load(path).graph
    kinds, by_output = {}, {}
    for n in g.node:
        kind = n.op_type
        kernel = next((list(a.ints) for a in n.attribute if a.name == "kernel_shape"), None)
        if n.op_type == "Conv" and kernel:
            kind = "Conv " + "x".join(map(str, kernel)) + (" (1-D)" if len(kernel) == 1 else "")
        kinds[n.name] = kind
        for o in n.output:
            by_output[o] = n.name
    return kinds, by_output

def origin(name, kinds, by_output):
    """The ONNX node a runtime's node came from: the longest prefix of its name, ending at a
    separator, that names an ONNX node (tract adds a suffix after a dot where it made several
    nodes of one, conv_322.prefused; onnxruntime adds a fusion's name after a slash,
    mul_294/QuickGeluFusion/) or an ONNX node's output (onnxruntime's eps_nchwc)."""
    for i in range(len(name), 0, -1):
        if i < len(name) and name[i] not in "./_":
            continue
        if name[:i] in kinds:
            return name[:i]
        if name[:i] in by_output:
            return by_output[name[:i]]
    return None

commit, modified = commit()
nets = []
for pair in pairs:
    bundle, inp = pair.split("=", 1)
    name = bundle.rsplit("/", 1)[-1].removesuffix(".brn")
    for net in "ab":
        kinds, by_output = onnx_nodes(f"{out}/{name}-{net}.onnx")
        br = json.load(open(f"{out}/{name}-{net}-brenier.json"))
        ox = json.load(open(f"{out}/{name}-{net}-ort.json"))
        prof = br["op_profile"]
        per_node = {"brenier": collections.Counter(), "onnxruntime": collections.Counter()}
        ran_as = collections.defaultdict(set)
        for n in prof["nodes"]:
            o = origin(n["name"], kinds, by_output)
            per_node["brenier"][o] += n["ms"]
            ran_as[o].add(n["op"])
        unattributed = 0  # runtime nodes made of no ONNX node (onnxruntime's layout reorders)
        for n in prof["nodes"]:
            unattributed += origin(n["name"], kinds, by_output) is None
        for n, ms in ox["nodes"].items():
            per_node["onnxruntime"][origin(n, kinds, by_output)] += ms
            unattributed += origin(n, kinds, by_output) is None
        # Per ONNX operator kind: both runtimes' time on the same ONNX nodes.
        fam = collections.defaultdict(lambda: {"brenier_ms": 0.0, "onnxruntime_ms": 0.0, "nodes": 0})
        for o in set(per_node["brenier"]) | set(per_node["onnxruntime"]):
            f = fam[kinds.get(o, "unattributed")]
            f["brenier_ms"] += per_node["brenier"][o]
            f["onnxruntime_ms"] += per_node["onnxruntime"][o]
            # ONNX nodes; for the unattributed, the runtime nodes (both runtimes') made of none
            f["nodes"] += 1 if o is not None else unattributed

        families = sorted(({"onnx_op": k, "nodes": v["nodes"], "brenier_ms": round(v["brenier_ms"], 3),
                            "onnxruntime_ms": round(v["onnxruntime_ms"], 3),
                            "brenier_minus_onnxruntime_ms": round(v["brenier_ms"] - v["onnxruntime_ms"], 3)}
                           for k, v in fam.items()), key=lambda f: -f["brenier_minus_onnxruntime_ms"])
        convs = sorted(({"node": o, "kind": kinds[o], "brenier_ops": sorted(ran_as[o]),
                         "brenier_ms": round(per_node["brenier"][o], 3), "onnxruntime_ms": round(per_node["onnxruntime"][o], 3)}
                        for o in kinds if kinds[o].startswith("Conv")), key=lambda c: -c["brenier_ms"])
        b_total, o_total = prof["ops_ms"], sum(per_node["onnxruntime"].values())
        nets.append({"bundle": bundle, "input": inp, "net": net,
                     # the timed runs' median, and the profiled runs' mean wall time (a mean
                     # takes the machine's slow spells in, as onnxruntime's profile does)
                     "brenier_eval_p50_ms": br["network_eval"]["p50_ms"],
                     "brenier_profiled_run_mean_ms": round(prof["run_ms"], 3),
                     "brenier_ops_ms": round(b_total, 3), "onnxruntime_ops_ms": round(o_total, 3),
                     "onnxruntime_eval_ms_profiling": ox["eval_ms"],
                     "by_onnx_op": families, "convolutions": convs,
                     "brenier_ops": [{k: o[k] for k in ("op", "nodes", "ms", "share")} for o in prof["ops"]],
                     "onnxruntime_ops": ox["ops"]})
        print(f"{bundle} net {net}: in operators, brenier {b_total:.2f} ms, onnxruntime {o_total:.2f} ms (one image, profiled)")
        for f in families:
            if max(f["brenier_ms"], f["onnxruntime_ms"]) >= 0.01:
                print(f"   {f['onnx_op']:<22} {f['nodes']:>3} nodes  brenier {f['brenier_ms']:7.3f}  "
                      f"onnxruntime {f['onnxruntime_ms']:7.3f}  difference {f['brenier_minus_onnxruntime_ms']:+7.3f} ms")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
json.dump({"command": command, "commit": commit, "modified": modified, "cpu": cpu,
           "onnxruntime": onnxruntime.__version__, "threads": 1, "batch": 1, "repeat": int(repeat),
           "note": "each profiler adds its own cost per node: compare the same nodes side by side, not these "
                   "totals with benches/results/peers-1t.json. A fused node counts under the ONNX node whose name "
                   "it keeps (onnxruntime's QuickGelu, a SiLU, under its Mul; tract's Silu under its Sigmoid); "
                   "unattributed: nodes a runtime made of none (onnxruntime's layout reorders)",
           "nets": nets}, open(result, "w"), indent=1)
print(f"wrote {result}")
PY
