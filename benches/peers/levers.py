"""Measures where one ε-network's CPU time goes, per operator family, in tract (the version brenier
runs, through its Python binding) and in onnxruntime on the same ONNX file and image, one thread
each; and what storing tract's own serialized form (NNEF, of the decluttered model) would save at
open against preparing from ONNX. These are the measurements behind the levers of the CPU-speed
work (docs/DESIGN.md, "CPU speed against onnxruntime"). Prints JSON.
"""
import argparse
import collections
import json
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort
import tract


def ms(seconds):
    return round(seconds * 1e3, 3)


def tract_prepare(onnx_path, shape):
    """Times ONNX parse, typing + decluttering, and optimisation, as brenier's load does them."""
    t0 = time.perf_counter()
    m = tract.onnx().load(onnx_path)
    m.set_input_fact(0, ",".join(map(str, shape)) + ",f32")
    m.set_input_fact(1, "1,i64")
    t1 = time.perf_counter()
    typed = m.into_model()
    t2 = time.perf_counter()
    return typed, {"parse_ms": ms(t1 - t0), "typed_and_decluttered_ms": ms(t2 - t1)}


def tract_levers(onnx_path, x, t, repeat):
    shape = x.shape
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
            want = from_onnx.run([x, t])[0].to_numpy()
            stages["first_run_ms"] = ms(time.perf_counter() - s)
            prepare.append(stages)
            s = time.perf_counter()
            loaded = tract.nnef().with_onnx().load(tar)
            n = {"nnef_load_ms": ms(time.perf_counter() - s)}
            s = time.perf_counter()
            runnable = loaded.into_runnable()
            n["optimised_ms"] = ms(time.perf_counter() - s)
            got = runnable.run([x, t])[0].to_numpy()
            n["max_abs_diff_vs_onnx"] = float(np.abs(got - want).max())
            nnef.append(n)
        nnef_bytes = os.path.getsize(tar)
    median = lambda rows: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    profile = json.loads(from_onnx.profile_json([x, t]))
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


def ort_ops(onnx_path, x, t, repeat):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feed = {names[0]: x, names[1]: t}
        sess.run(None, feed)
        s = time.perf_counter()
        for _ in range(repeat):
            sess.run(None, feed)
        eval_s = (time.perf_counter() - s) / repeat
        events = json.load(open(sess.end_profiling()))
    ops = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ops[e["args"]["op_name"]] += e["dur"] / 1e6 / (repeat + 1)
    total = sum(ops.values())
    return {
        "eval_ms": ms(eval_s),
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
