"""The Python side of benches/interfaces: translate_loop.py BUNDLE IN.npy CALLS WARMUP THREADS times
Bundle.translate (OT-ALD, K = 10, one batch) CALLS times after WARMUP untimed calls and prints
{"interface": "python", "seconds": [...]}."""
import json
import sys
import time

import numpy as np

import brenier

bundle, inputs, calls, warmup, threads = sys.argv[1:6]
b = brenier.Bundle(bundle, threads=int(threads))
x = np.load(inputs)
for _ in range(int(warmup)):
    b.translate(x, steps=10)
seconds = []
for _ in range(int(calls)):
    t0 = time.perf_counter()
    y = b.translate(x, steps=10)
    seconds.append(time.perf_counter() - t0)
    del y  # freed outside the timed call, as the Rust loop frees its result (C's output is its own buffer)
print(json.dumps({"interface": "python", "seconds": seconds}))
