"""brenier from Python: translate.py BUNDLE INPUTS OUT.npy [STEPS]; INPUTS: images, a folder, a .npy."""
import sys

import numpy as np

import brenier

bundle, inputs, out = sys.argv[1:4]
steps = int(sys.argv[4]) if len(sys.argv) > 4 else None
with brenier.Bundle(bundle) as b:
    x = b.read_images(inputs)  # [N, C, H, W] float32 in model space, as the CLI reads them
    y, run = b.translate(x, method="ot-ald", steps=steps, report=True)
np.save(out, y)
print(f"{len(y)} images, {run['nfe']} NFE: encode {run['encode']['seconds']:.3f} s, decode {run['decode']['seconds']:.3f} s")
