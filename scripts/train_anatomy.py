#!/usr/bin/env python3
"""Train the anatomy model (crates/fluoro-analysis/src/anatomy/) from `fluoro train-data`.

Reproducible: fixed seeds, numpy only. A two-hidden-layer perceptron (ReLU) on the
standardised features, softmax cross-entropy with square-root inverse-frequency class weights
(background was subsampled to a quarter by the exporter, which the weights undo), Adam.
Validation: every sixth study is held out; per-class Dice on its cells is printed.

    cargo run --release -p fluoro-cli -- train-data --out /tmp/anat
    python3 scripts/train_anatomy.py /tmp/anat crates/fluoro-analysis/src/anatomy_weights.json
"""
import json
import sys

import numpy as np

HIDDEN = (64, 64)
EPOCHS = 12
BATCH = 2048
LR = 3e-3
CLASSES = 4


def dice(pred, y, c):
    a, b = pred == c, y == c
    s = a.sum() + b.sum()
    return 2.0 * (a & b).sum() / s if s else float("nan")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    x = np.load(f"{src}/X.npy").astype(np.float32)
    y = np.load(f"{src}/y.npy").astype(np.int64)
    study = np.load(f"{src}/study.npy")
    val = study % 6 == 5
    mean = x[~val].mean(0)
    std = x[~val].std(0) + 1e-6
    xs = (x - mean) / std
    counts = np.bincount(y[~val], minlength=CLASSES).astype(np.float64)
    counts[0] *= 4.0  # the exporter kept a quarter of the background
    weight = (counts.sum() / np.maximum(counts, 1.0)) ** 0.5
    weight /= weight[0]
    weight[0] /= 4.0  # each kept background cell stands for four
    weight /= weight.mean()
    print("class counts", counts.astype(int), "weights", np.round(weight, 3))

    rng = np.random.default_rng(2026)
    sizes = (x.shape[1],) + HIDDEN + (CLASSES,)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params.append([rng.normal(0, np.sqrt(2.0 / a), (b, a)).astype(np.float32), np.zeros(b, np.float32)])
    m = [[np.zeros_like(w), np.zeros_like(b)] for w, b in params]
    v = [[np.zeros_like(w), np.zeros_like(b)] for w, b in params]
    t = 0
    xt, yt = xs[~val], y[~val]
    for epoch in range(EPOCHS):
        order = rng.permutation(len(yt))
        lr = LR * (0.5 ** (epoch // 4))
        total = 0.0
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            acts = [xt[idx]]
            for li, (w, b) in enumerate(params):
                z = acts[-1] @ w.T + b
                acts.append(np.maximum(z, 0) if li < len(params) - 1 else z)
            z = acts[-1]
            z = z - z.max(1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(1, keepdims=True)
            yy = yt[idx]
            wts = weight[yy].astype(np.float32)
            total += float(-(wts * np.log(p[np.arange(len(yy)), yy] + 1e-9)).sum())
            g = p
            g[np.arange(len(yy)), yy] -= 1.0
            g *= (wts / wts.sum())[:, None]
            t += 1
            for li in range(len(params) - 1, -1, -1):
                w, b = params[li]
                gw = g.T @ acts[li]
                gb = g.sum(0)
                if li > 0:
                    g = (g @ w) * (acts[li] > 0)
                for j, gr in enumerate((gw, gb)):
                    m[li][j] = 0.9 * m[li][j] + 0.1 * gr
                    v[li][j] = 0.999 * v[li][j] + 0.001 * gr * gr
                    mh = m[li][j] / (1 - 0.9 ** t)
                    vh = v[li][j] / (1 - 0.999 ** t)
                    params[li][j] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        a = xs[val]
        for li, (w, b) in enumerate(params):
            a = a @ w.T + b
            if li < len(params) - 1:
                a = np.maximum(a, 0)
        pred = a.argmax(1)
        d = [dice(pred, y[val], c) for c in range(1, CLASSES)]
        print(f"epoch {epoch}: loss {total / len(yt):.4f}  val dice lamina {d[0]:.3f} LF {d[1]:.3f} contrast {d[2]:.3f}")
    out = {
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "layers": [[[[float(v) for v in row] for row in w], [float(v) for v in b]] for w, b in params],
    }
    with open(dst, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", dst)


if __name__ == "__main__":
    main()
