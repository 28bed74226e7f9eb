#!/usr/bin/env python3
"""Makes a bring-your-own-models workload at 3×64×64 for `brenier export --images-a/--images-b`:

1. Two ADM-style ε-UNets (guided-diffusion layout: GroupNorm(32), SiLU, 3×3 convs, two residual
   blocks per level at 64/32/16/8 px, multi-head self-attention at 16 and 8 px, strided-conv down,
   nearest-upsample + conv up, skip concats, a sinusoidal int64 timestep embedding), 9.3 M
   parameters each, exported with torch.onnx (opset 17, dynamic batch). Their weights are seeded,
   not trained: this workload measures the exporter's path and cost, not translation quality.
   Each export is checked against PyTorch with onnxruntime.
2. Two folders of real photographs: random crops (80-200 px, so `--resize` has work to do) of the
   pictures scikit-image ships, domain A from the cat (listed twice: `cat` is `chelsea`), the
   astronaut and a microscopy slide, domain B from coffee, a rocket, the Hubble deep field and a
   colour wheel. Crop i comes from picture i mod 4 and is PNG for even i, JPEG for odd i, in
   folder part{i mod 4}: each sub-folder holds one picture's crops in one format.
3. `sources.npy`: the first 16 images of domain A in path order (all PNG crops of the cat, from
   part0/) centre-cropped and resized to 64×64 in model space [-1, 1], [16, 3, 64, 64]: what
   benches/peers feeds both runtimes for this pair (speed does not depend on the picture).

    python benches/byo/make_inputs.py OUT_DIR [IMAGES_PER_DOMAIN]
"""
import json
import math
import os
import sys

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from skimage import data

# The sinusoidal embedding of the committed UNet fixtures (guided-diffusion's), one definition.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures"))
from make_fixtures import timestep_embedding  # noqa: E402


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(temb, cout))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    def __init__(self, ch, heads=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(32, ch)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj = nn.Conv1d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, h * w)).reshape(b * self.heads, 3 * c // self.heads, h * w)
        q, k, v = qkv.chunk(3, dim=1)
        scale = 1.0 / math.sqrt(math.sqrt(c // self.heads))
        att = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        out = torch.einsum("bts,bcs->bct", att, v).reshape(b, c, h * w)
        return x + self.proj(out).reshape(b, c, h, w)


class AdmUNet(nn.Module):
    """Levels at 64, 32, 16, 8 px with channels ch·mult; attention at 16 and 8 px."""

    def __init__(self, ch=64, mult=(1, 2, 2, 2), blocks=2, attn_res=(16, 8), size=64):
        super().__init__()
        temb = 4 * ch
        self.ch = ch
        self.time = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.inp = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]
        c, res = ch, size
        for level, m in enumerate(mult):
            for _ in range(blocks):
                layer = nn.ModuleList([ResBlock(c, ch * m, temb)])
                c = ch * m
                if res in attn_res:
                    layer.append(Attention(c))
                self.down.append(layer)
                skips.append(c)
            if level < len(mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skips.append(c)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb), Attention(c), ResBlock(c, c, temb)])
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(mult))):
            for i in range(blocks + 1):
                layer = nn.ModuleList([ResBlock(c + skips.pop(), ch * m, temb)])
                c = ch * m
                if res in attn_res:
                    layer.append(Attention(c))
                if level > 0 and i == blocks:
                    layer.append(nn.Conv2d(c, c, 3, padding=1))  # after a nearest 2× upsample
                    res *= 2
                self.up.append(layer)
        self.out = nn.Sequential(nn.GroupNorm(32, c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1))

    def forward(self, x, t):
        emb = self.time(timestep_embedding(t, self.ch))
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            for mod in layer:
                h = mod(h, emb) if isinstance(mod, ResBlock) else mod(h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for layer in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for mod in layer:
                if isinstance(mod, ResBlock):
                    h = mod(h, emb)
                elif isinstance(mod, Attention):
                    h = mod(h)
                else:
                    h = mod(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(h)


def export_net(seed, path):
    torch.manual_seed(seed)
    model = AdmUNet().eval()
    # A trained network predicts ε of unit scale: scale the random output layer so this one does
    # too (the default init gives outputs of arbitrary size and decodes that blow up).
    with torch.no_grad():
        x = torch.randn(4, 3, 64, 64)
        t = torch.tensor([10, 300, 600, 990])
        model.out[2].weight.mul_(1.0 / model(x, t).std())
    x = torch.randn(2, 3, 64, 64)
    t = torch.tensor([500, 500], dtype=torch.int64)
    kwargs = dict(input_names=["x", "t"], output_names=["eps"], opset_version=17, do_constant_folding=True,
                  dynamic_axes={"x": {0: "batch"}, "t": {0: "batch"}, "eps": {0: "batch"}})
    try:
        torch.onnx.export(model, (x, t), path, dynamo=False, **kwargs)
    except TypeError:
        torch.onnx.export(model, (x, t), path, **kwargs)
    xs = np.random.default_rng(seed).standard_normal((3, 3, 64, 64)).astype(np.float32)
    ts = np.array([0, 500, 999], dtype=np.int64)
    (ref,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": xs, "t": ts})
    with torch.no_grad():
        mine = model(torch.from_numpy(xs), torch.from_numpy(ts)).numpy()
    return {"path": path, "params": sum(p.numel() for p in model.parameters()),
            "ort_vs_torch_max_abs": float(np.abs(ref - mine).max()), "eps_std": float(mine.std())}


def crops(pictures, n, folder, seed):
    rng = np.random.default_rng(seed)
    for i in range(n):
        pic = pictures[i % len(pictures)]
        side = int(rng.integers(80, 201))
        y = int(rng.integers(0, pic.shape[0] - side + 1))
        x = int(rng.integers(0, pic.shape[1] - side + 1))
        img = Image.fromarray(pic[y:y + side, x:x + side])
        sub = os.path.join(folder, f"part{i % 4}")
        os.makedirs(sub, exist_ok=True)
        if i % 2:
            img.save(os.path.join(sub, f"{i:05d}.jpg"), quality=90)
        else:
            img.save(os.path.join(sub, f"{i:05d}.png"))


def model_space_sample(folder, n, path):
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs)[:n]
    out = []
    for f in files:
        img = Image.open(f).convert("RGB")
        side = min(img.size)
        left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((64, 64), Image.LANCZOS)
        out.append(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
    np.save(path, np.stack(out).astype(np.float32))


def rgb(img):
    return np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[..., :3]


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1200
    os.makedirs(out, exist_ok=True)
    # Domain A: animals and people; domain B: objects and scenes (every picture at least 300 px).
    a = [rgb(data.chelsea()), rgb(data.cat()), rgb(data.astronaut()), rgb(data.immunohistochemistry())]
    b = [rgb(data.coffee()), rgb(data.rocket()), rgb(data.hubble_deep_field()), rgb(data.colorwheel())]
    summary = {"nets": {"a": export_net(1, os.path.join(out, "net_a.onnx")),
                        "b": export_net(2, os.path.join(out, "net_b.onnx"))},
               "images_per_domain": n}
    crops(a, n, os.path.join(out, "images_a"), 10)
    crops(b, n, os.path.join(out, "images_b"), 20)
    model_space_sample(os.path.join(out, "images_a"), 16, os.path.join(out, "sources.npy"))
    json.dump(summary, open(os.path.join(out, "inputs.json"), "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
