#!/usr/bin/env bash
# Bring your own models, measured: `brenier export` from two torch-exported ADM-style ε-UNets
# (3×64×64, ~9.3 M parameters each, attention, int64 t) and two folders of PNG and JPEG
# photographs of mixed sizes (--resize), then a translation with the bundle it wrote. Writes
# benches/results/export-adm64.json: the commands, wall time and peak memory of each, every map's
# solve certificate from the manifest, and the bundle's size (the figures README quotes).
#
#   benches/byo/run.sh                 N = 1000 forward targets per map, maps a->b,b->a,noise->b
#   N=400 THREADS=2 benches/byo/run.sh
#
# Also measures the encode stage alone: an a->b map from 64 DDIM-encoded targets (K = 10, i.e.
# 640 network evaluations at 64×64), which is what `--targets-kind encoded` costs per target.
# The networks' weights are seeded, not trained (benches/byo/make_inputs.py says why), so the
# outputs' look is not a finding; the path, its cost and its certificates are.
# Installs torch, onnx, onnxruntime and scikit-image from PyPI into target/torch-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000}
THREADS=${THREADS:-2}
OUT=out/byo
RESULT=${RESULT:-benches/results/export-adm64.json}
VENV=target/torch-venv
command -v /usr/bin/time >/dev/null || { echo "needs GNU time at /usr/bin/time (Debian package \`time\`)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch onnx onnxscript onnxruntime numpy pillow scikit-image
fi
[ -f "$OUT/inputs.json" ] && [ -f "$OUT/sources.npy" ] || "$VENV/bin/python" benches/byo/make_inputs.py "$OUT" 1200
if [ -z "${BRENIER:-}" ]; then
    cargo build --release --quiet -p brenier-train -p brenier-cli
fi
B=${BRENIER:-target/release/brenier}
# Cold runs: no cached latents or height checkpoints from an earlier run.
rm -rf "$OUT/runs" "$OUT/work" "$OUT/work-encoded" && mkdir -p "$OUT/runs"
git describe --always --dirty > "$OUT/runs/commit.txt"

# run NAME CMD...: the command under /usr/bin/time (wall seconds, peak RSS) into $OUT/runs/NAME.*
run() {
    local name=$1; shift
    echo "== $name: $*"
    printf '%s\n' "$*" > "$OUT/runs/$name.cmd"
    /usr/bin/time -f '%e %M' -o "$OUT/runs/$name.time" "$@"
}

run export "$B" export --net-a "$OUT/net_a.onnx" --net-b "$OUT/net_b.onnx" --name-a photos-a --name-b photos-b \
    --images-a "$OUT/images_a" --images-b "$OUT/images_b" --resize --t 500 --maps 'a->b,b->a,noise->b' \
    --num-targets "$N" --threads "$THREADS" --work-dir "$OUT/work" -o "$OUT/adm64.brn"
run export-encoded "$B" export --net-a "$OUT/net_a.onnx" --net-b "$OUT/net_b.onnx" \
    --images-a "$OUT/images_a" --images-b "$OUT/images_b" --resize --t 500 --maps 'a->b' \
    --targets-kind encoded --encode-steps 10 --num-targets 64 --threads "$THREADS" \
    --work-dir "$OUT/work-encoded" -o "$OUT/adm64-encoded.brn"
rm -rf "$OUT/translate-in" "$OUT/translated" && mkdir -p "$OUT/translate-in" "$OUT/translated"
find "$OUT/images_a" -type f | sort > "$OUT/runs/images-a.txt"
sed -n 1,8p "$OUT/runs/images-a.txt" | xargs -I{} cp {} "$OUT/translate-in/"
run translate "$B" translate --bundle "$OUT/adm64.brn" --method ot-ald --steps 10 --threads "$THREADS" \
    --input "$OUT/translate-in" --resize --output "$OUT/translated"
"$B" inspect "$OUT/adm64.brn" --json > "$OUT/inspect.json"
"$B" inspect "$OUT/adm64-encoded.brn" --json > "$OUT/inspect-encoded.json"

"$VENV/bin/python" - "$OUT" "$RESULT" "$N" "$THREADS" <<'PY'
import json, os, sys
out, result, n, threads = sys.argv[1:]
def timed(name):
    wall, rss = open(f"{out}/runs/{name}.time").read().split()
    return {"command": open(f"{out}/runs/{name}.cmd").read().strip(), "wall_s": float(wall),
            "peak_rss_mib": round(int(rss) / 1024, 1)}
def maps(path):
    m = json.load(open(path))
    return {"file_bytes": m["file_bytes"],
            "maps": [{k: o.get(k) for k in ("name", "t", "count", "solve")} for o in m["manifest"]["ot_maps"]]}
inputs = json.load(open(f"{out}/inputs.json"))
doc = {
    "what": "brenier export from two torch-exported ADM-style UNets (3x64x64) and PNG/JPEG folders; "
            "networks seeded, not trained",
    "made_by": "benches/byo/run.sh (inputs: benches/byo/make_inputs.py)",
    "cpu": open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip(),
    "brenier_commit": open(f"{out}/runs/commit.txt").read().strip(),
    "packages": {name: __import__(name).__version__ for name in ("torch", "onnx", "onnxruntime", "skimage", "numpy")},
    "threads": int(threads), "num_targets": int(n),
    "nets": {k: {"params": v["params"], "ort_vs_torch_max_abs": v["ort_vs_torch_max_abs"]} for k, v in inputs["nets"].items()},
    "images_per_domain": inputs["images_per_domain"],
    "export": {**timed("export"), **maps(f"{out}/inspect.json")},
    "export_encoded": {**timed("export-encoded"), **maps(f"{out}/inspect-encoded.json")},
    "translate_8_images_ot_ald_k10": timed("translate"),
}
json.dump(doc, open(result, "w"), indent=1)
print(json.dumps(doc, indent=1))
PY
