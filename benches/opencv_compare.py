#!/usr/bin/env python3
"""Side-by-side speed of the fluoro CPU enhancement stages and their OpenCV counterparts.

Runs, in one go and at one thread count, our `stage_times` example and the matching OpenCV
calls on the same simulated 12-bit frame, then prints medians and ratios (OpenCV / ours:
above 1 means we are faster). Compare ratios, not absolute times: the machine is shared.

    pip install opencv-python-headless numpy
    python3 benches/opencv_compare.py [--threads 2] [--sizes 512 1024 1536] [--iters 50]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np


def median_ms(fn, iters):
    fn()
    t = []
    for _ in range(iters):
        s = time.perf_counter()
        fn()
        t.append((time.perf_counter() - s) * 1000.0)
    return float(np.median(t))


def opencv_stages(frame_u16, iters):
    f32 = frame_u16.astype(np.float32)
    prev = f32.copy()
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    acc = f32.copy()
    out = {
        # log transform of the (linear) frame: the normalisation counterpart
        "normalize": median_ms(lambda: cv2.log(f32 + 1.0), iters),
        "temporal": median_ms(lambda: cv2.accumulateWeighted(f32, acc, 0.25), iters),
        "bilateral_d5": median_ms(lambda: cv2.bilateralFilter(f32, 5, 60.0, 2.0), iters),
        "gaussian_s2": median_ms(lambda: cv2.GaussianBlur(f32, (0, 0), 2.0), iters),
        "clahe_8x8": median_ms(lambda: clahe.apply(frame_u16), iters),
        # two-band unsharp: two blurs and the arithmetic
        "detail": median_ms(
            lambda: cv2.addWeighted(f32, 1.6, cv2.GaussianBlur(f32, (0, 0), 1.5), -0.6, 0)
            + 0.4 * (cv2.GaussianBlur(f32, (0, 0), 1.5) - cv2.GaussianBlur(f32, (0, 0), 6.0)),
            iters,
        ),
        "median5_u16": median_ms(lambda: cv2.medianBlur(frame_u16, 5), iters),
    }
    del prev
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 1536])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--json", help="also write the table here")
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fluoro-enhance", "--example", "stage_times"], cwd=root, check=True)
    exe = os.path.join(root, "target", "release", "examples", "stage_times")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for size in a.sizes:
            dump = os.path.join(d, f"frame_{size}.npy")
            ours = json.loads(subprocess.run([exe, str(size), str(a.iters), dump], env=env, check=True, capture_output=True, text=True).stdout)
            frame = np.load(dump)
            cv = opencv_stages(frame, a.iters)
            for stage, ms in ours["stages_ms"].items():
                rows.append({"size": size, "stage": stage, "ours_ms": ms, "opencv_ms": cv.get(stage)})
            rows.append({"size": size, "stage": "median5_u16", "ours_ms": None, "opencv_ms": cv["median5_u16"]})
    print(f"threads: {a.threads} (OpenCV {cv2.__version__})")
    print(f"{'size':>5} {'stage':<14} {'ours ms':>9} {'OpenCV ms':>10} {'ratio':>7}")
    for r in rows:
        o, c = r["ours_ms"], r["opencv_ms"]
        ratio = f"{c / o:7.2f}" if (o and c) else "      -"
        print(f"{r['size']:>5} {r['stage']:<14} {o if o is not None else float('nan'):9.3f} {c if c is not None else float('nan'):10.3f} {ratio}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
