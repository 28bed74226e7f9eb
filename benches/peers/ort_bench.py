"""Times one ONNX ε-network in onnxruntime, the way `brenier bench` times it in brenier:
the same file, the same input images (cycled to fill the batch), the same thread count,
one warm-up run, then the median of --repeat runs. Prints JSON: {batch: ms per evaluation}.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--onnx", required=True)
    p.add_argument("--input", required=True, help=".npy [N,C,H,W] float32")
    p.add_argument("--batch", default="1,4,16")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--t", type=int, default=500)
    a = p.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    images = np.load(a.input).astype(np.float32)
    out = {}
    for b in [int(x) for x in a.batch.split(",")]:
        x = np.resize(images, (b,) + images.shape[1:]).astype(np.float32)
        feed = {}
        for i in inputs:
            if len(i.shape) == 4:
                feed[i.name] = x
            else:
                dtype = np.int64 if "int64" in i.type else np.float32
                feed[i.name] = np.full((b,), a.t, dtype=dtype)
        sess.run(None, feed)
        times = []
        for _ in range(a.repeat):
            s = time.perf_counter()
            sess.run(None, feed)
            times.append(time.perf_counter() - s)
        out[str(b)] = float(np.median(times) * 1e3)
    print(json.dumps({"onnxruntime": ort.__version__, "threads": a.threads, "ms": out}))


if __name__ == "__main__":
    main()
