"""onnxruntime's profile of one ε-network, one thread, per operator and per node: what levers.py
and profile.sh set brenier's and tract's figures beside. Needs onnx, onnxruntime and numpy only
(profile.sh installs no more; levers.py also needs tract's Python binding)."""
import collections
import json
import os
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort


def ms(seconds):
    return round(seconds * 1e3, 3)


def inputs(onnx_path):
    """(image input name, timestep input name): the image is the rank-4 input."""
    graph = onnx.load(onnx_path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    real = [i for i in graph.input if i.name not in inits]
    rank = lambda i: len(i.type.tensor_type.shape.dim)
    x = next(i for i in real if rank(i) == 4).name
    return x, next(i.name for i in real if i.name != x)


def time_only_nodes(onnx_path):
    """Names of the nodes that do not depend on the image: the timestep embedding, which one
    denoising step could compute once for its whole batch."""
    graph = onnx.load(onnx_path, load_external_data=False).graph
    x_name, _ = inputs(onnx_path)
    on_x, names = {x_name}, set()
    for node in graph.node:  # ONNX lists nodes in topological order
        if any(i in on_x for i in node.input):
            on_x.update(node.output)
        else:
            names.add(node.name)
    return names


def ort_ops(onnx_path, x, t, repeat):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        x_name, t_name = inputs(onnx_path)
        t_in = next(i for i in sess.get_inputs() if i.name == t_name)
        feed = {x_name: x, t_name: t if "int64" in t_in.type else t.astype(np.float32)}
        sess.run(None, feed)
        s = time.perf_counter()
        for _ in range(repeat):
            sess.run(None, feed)
        eval_s = (time.perf_counter() - s) / repeat
        events = json.load(open(sess.end_profiling()))
    ops, nodes, time_only = collections.Counter(), collections.Counter(), 0.0
    t_nodes = time_only_nodes(onnx_path)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ops[e["args"]["op_name"]] += e["dur"] / 1e6 / (repeat + 1)
            nodes[e["name"].removesuffix("_kernel_time")] += e["dur"] / 1e3 / (repeat + 1)
            if e["name"].removesuffix("_kernel_time") in t_nodes:
                time_only += e["dur"] / 1e6 / (repeat + 1)
    total = sum(ops.values())
    return {
        # with the profiler on, which adds its own cost per node
        "eval_ms": ms(eval_s),
        "time_embedding_share": round(time_only / total, 5),
        "ops": [{"op": k, "ms": ms(v), "share": round(v / total, 4)} for k, v in ops.most_common()],
        # per node, in ms: onnxruntime's node names (after its fusions), for profile.sh
        "nodes": {k: round(v, 4) for k, v in nodes.most_common()},
    }
