"""Measures where one ε-network's CPU time goes, per operator family, in tract (the version brenier
runs as published, without brenier's patch of tract-core, through its Python binding) and in
onnxruntime on the same ONNX file and image, one thread each; and what storing tract's own
serialized form (NNEF, of the decluttered model) would save at open against preparing from ONNX.
These are the measurements behind the levers of the CPU-speed work (docs/DESIGN.md, "CPU speed
against onnxruntime"). Prints JSON.
"""
import argparse
import collections
import json
import os
import statistics
import tempfile
import time

import numpy as np
import onnx
import tract

from ort_profile import inputs, ms, ort_ops


def tract_prepare(onnx_path, shape):
    """Times ONNX parse, typing + decluttering, and optimisation, the stages of brenier's load,
    in the published tract (brenier builds a patched tract-core: vendor/README.md)."""
    graph = onnx.load(onnx_path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    real = [i for i in graph.input if i.name not in inits]
    x_name, t_name = inputs(onnx_path)
    t_pos = [i.name for i in real].index(t_name)
    t_type = "i64" if real[t_pos].type.tensor_type.elem_type == onnx.TensorProto.INT64 else "f32"
    t0 = time.perf_counter()
    m = tract.onnx().load(onnx_path)
    m.set_input_fact([i.name for i in real].index(x_name), ",".join(map(str, shape)) + ",f32")
    m.set_input_fact(t_pos, "1," + t_type)
    t1 = time.perf_counter()
    typed = m.into_model()
    t2 = time.perf_counter()
    return typed, {"parse_ms": ms(t1 - t0), "typed_and_decluttered_ms": ms(t2 - t1)}


def ordered(onnx_path, x, t):
    """The image and the timestep (in the graph's dtype) in the graph's input order."""
    graph = onnx.load(onnx_path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    real = [i for i in graph.input if i.name not in inits]
    x_name, _ = inputs(onnx_path)
    out = []
    for i in real:
        if i.name == x_name:
            out.append(x)
        else:
            out.append(t if i.type.tensor_type.elem_type == onnx.TensorProto.INT64 else t.astype(np.float32))
    return out


def tract_levers(onnx_path, x, t, repeat):
    shape = x.shape
    feed = ordered(onnx_path, x, t)
    prepare, nnef = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "net.nnef.tar")
        for _ in range(repeat):
            typed, stages = tract_prepare(onnx_path, shape)
            tract.nnef().with_onnx().write_model_to_tar(typed, tar)
            s = time.perf_counter()
            from_onnx = typed.into_runnable()
            stages["optimised_ms"] = ms(time.perf_counter() - s)
            s = time.perf_counter()
            want = from_onnx.run(feed)[0].to_numpy()
            stages["first_run_ms"] = ms(time.perf_counter() - s)
            prepare.append(stages)
            s = time.perf_counter()
            loaded = tract.nnef().with_onnx().load(tar)
            n = {"nnef_load_ms": ms(time.perf_counter() - s)}
            s = time.perf_counter()
            runnable = loaded.into_runnable()
            n["optimised_ms"] = ms(time.perf_counter() - s)
            got = runnable.run(feed)[0].to_numpy()
            n["max_abs_diff_vs_onnx"] = float(np.abs(got - want).max())
            nnef.append(n)
        nnef_bytes = os.path.getsize(tar)
    median = lambda rows: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    profile = json.loads(from_onnx.profile_json(feed))
    total = profile["profiling_info"]["secs_per_iter"]
    ops = collections.Counter()
    for node in profile["nodes"]:
        ops[node["op_name"].split("(")[0]] += node.get("secs_per_iter", 0.0)
    return {
        "prepare_from_onnx": median(prepare),
        "prepare_from_nnef": median(nnef),
        "nnef_bytes": nnef_bytes,
        "onnx_bytes": os.path.getsize(onnx_path),
        "eval_ms": ms(total),
        "ops": [{"op": k, "ms": ms(v), "share": round(v / total, 4)} for k, v in ops.most_common()],
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--onnx", required=True)
    p.add_argument("--input", required=True, help=".npy [N,C,H,W] float32: the first image is used")
    p.add_argument("--t", type=int, default=500)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    x = np.ascontiguousarray(np.load(a.input)[:1].astype(np.float32))
    t = np.array([a.t], dtype=np.int64)
    print(json.dumps({
        "tract": tract_levers(a.onnx, x, t, a.repeat),
        "onnxruntime": ort_ops(a.onnx, x, t, 20),
    }, indent=1))


if __name__ == "__main__":
    main()
