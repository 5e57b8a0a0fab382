"""A perturbation sweep: time as a ratio measured in one run on this machine.

    .venv/bin/python benchmarks/bench_sweep.py [--perturbation blur] [--repeats 3]

A 16-step sweep of sample_images/cat.jpg (the default: blur sigma 0, 0.5, ..., 7.5, the first
step the clean picture), ResNet-50 (random weights: timing does not depend on them), ``blocks``,
K=4: :func:`cnn_engine.sweep` (loading, perturbing, capture of every step's volume, drift and the
table) over the bare batched forward of the same 16 perturbed pictures (already made, one batch
of 16, no capture). Target: <= 1.3. Also printed: the same without building the 16 volumes
(``volumes=False``: predictions, drift and table only). Runs alternate; the ratio printed is the median of the
per-pair ratios.

What a process pays once per model and input size (tracing, receptive fields) is measured before
and printed on its own line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from cnn_engine.images import load_image  # noqa: E402
from cnn_engine.perturbations import perturbation  # noqa: E402
from cnn_engine.preprocess import Preprocessing, fitted_input, network_input  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perturbation", default="blur")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    chosen = perturbation(args.perturbation)
    step = (chosen.high - chosen.low) / 64 if chosen.identity is None else min(0.5, (chosen.high - chosen.low) / 32)
    start_value = chosen.identity if chosen.identity is not None else chosen.low
    values = [start_value + i * step for i in range(16)]
    image = ROOT / "sample_images" / "cat.jpg"

    start = time.perf_counter()
    clean = network_input(load_image(image).image, Preprocessing(), model.mean, model.std)
    model.geometry(clean.rgb.shape[:2])
    model.instrumented(model.levels("blocks"))
    once = time.perf_counter() - start
    batch = torch.cat([fitted_input(chosen.apply(clean.rgb, v), model.mean, model.std).tensor for v in values])

    def bare() -> float:
        begin = time.perf_counter()
        with torch.inference_mode():
            model.module(batch)
        return time.perf_counter() - begin

    def pipeline(volumes: bool = True) -> float:
        begin = time.perf_counter()
        cnn_engine.sweep(model, image, args.perturbation, values, layers="blocks", top_k=4, volumes=volumes)
        return time.perf_counter() - begin

    bare()  # warm up the batch-16 shapes
    runs = [(bare(), pipeline(), pipeline(volumes=False)) for _ in range(args.repeats)]
    pairs = [(b, p) for b, p, _ in runs]
    ratios = [p / b for b, p in pairs]
    table_only = [q / b for b, _, q in runs]
    print(f"perturbation sweep, 16 steps of {args.perturbation} ({values[0]:g} to {values[-1]:g} {chosen.unit}), "
          "ResNet-50 blocks K=4, cat.jpg at 224 px")
    print(f"  once per process and input size: tracing and receptive fields {once:.2f} s")
    for b, p in pairs:
        print(f"  bare batched forward {b:.2f} s, sweep {p:.2f} s")
    print(f"  ratio sweep / bare batched forward: {statistics.median(ratios):.2f} (median of {len(ratios)}; "
          "target <= 1.3)")
    print(f"  without building the volumes (volumes=False, as the ParaView source runs it; a step's volume is "
          f"made when shown): {statistics.median(table_only):.2f}")


if __name__ == "__main__":
    main()
