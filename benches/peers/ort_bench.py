"""Times one ONNX ε-network in onnxruntime, the way `brenier bench` times it in brenier:
the same file, the same input images (cycled to fill the batch), the same thread count,
one warm-up run, then the median of --repeat runs. Also times the session's creation and its
first evaluation of one image, as `brenier bench` times bundle open to first ε. Prints JSON:
{batch: ms per evaluation}, open_to_first_ms.
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
    images = np.load(a.input).astype(np.float32)

    def feed_for(sess, b):
        x = np.resize(images, (b,) + images.shape[1:]).astype(np.float32)
        feed = {}
        for i in sess.get_inputs():
            if len(i.shape) == 4:
                feed[i.name] = x
            else:
                dtype = np.int64 if "int64" in i.type else np.float32
                feed[i.name] = np.full((b,), a.t, dtype=dtype)
        return feed

    # The process's first session: its creation (graph optimisation included) and its first
    # evaluation of one image; preparing that input is not counted.
    s = time.perf_counter()
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    created = time.perf_counter() - s
    one = feed_for(sess, 1)
    s = time.perf_counter()
    sess.run(None, one)
    open_to_first_ms = (created + time.perf_counter() - s) * 1e3
    out = {}
    for b in [int(x) for x in a.batch.split(",")]:
        feed = feed_for(sess, b)
        sess.run(None, feed)
        times = []
        for _ in range(a.repeat):
            s = time.perf_counter()
            sess.run(None, feed)
            times.append(time.perf_counter() - s)
        out[str(b)] = float(np.median(times) * 1e3)
    print(json.dumps({"onnxruntime": ort.__version__, "threads": a.threads, "ms": out,
                      "open_to_first_ms": open_to_first_ms}))


if __name__ == "__main__":
    main()
