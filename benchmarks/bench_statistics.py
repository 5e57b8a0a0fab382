"""Channel statistics over a labelled set: time as a ratio measured in one run on this machine.

    .venv/bin/python benchmarks/bench_statistics.py [--images 128] [--top-n 9]

A labelled set of --images JPEG files at 224 px (bench_sets.make_set: crops, flips and rotations
of the sample photographs, one class folder per photograph), ResNet-50 (random weights: timing
does not depend on them), ``blocks``: :func:`cnn_engine.channel_statistics` (decoding, capture,
spatial means, exemplars with receptive fields, the class statistics) over the bare batched
forward of the same images (already decoded, batch 16, no capture). Target: <= 1.2.

What a process pays once per model and input size (tracing the graph, working out the receptive
fields with one forward pass, whose first convolutions at a new shape are slow) is measured
before and printed on its own line: it does not grow with the set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from benchmarks.bench_sets import bare_forward, make_set  # noqa: E402

#: ImageNet class names for the sample photographs' folders (what the set's labels read).
CLASSES = {"astronaut": "space shuttle", "coffee": "espresso", "cat": "tabby", "grace_hopper": "military uniform",
           "rocket": "missile"}


def labelled_set(folder: Path, count: int) -> list[Path]:
    """``count`` images in one folder per class (the photograph each was made from)."""
    paths = make_set(folder, count)
    sources = sorted((ROOT / "sample_images").glob("*.jpg"))
    moved = []
    for i, path in enumerate(paths):
        label = CLASSES[sources[i % len(sources)].stem].replace(" ", "_")
        (folder / label).mkdir(exist_ok=True)
        moved.append(path.rename(folder / label / path.name))
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--top-n", type=int, default=9)
    args = parser.parse_args()
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    with tempfile.TemporaryDirectory(prefix="cnnvis-bench-statistics-") as tmp:
        folder = Path(tmp)
        paths = labelled_set(folder, args.images)
        bare_forward(model, paths[:16])  # warm up: first-call allocations are not the network's cost
        bare = bare_forward(model, paths)
        start = time.perf_counter()
        model.geometry((224, 224))
        model.instrumented(model.levels("blocks"))
        once = time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = cnn_engine.channel_statistics(model, folder, layers="blocks", top_n=args.top_n)
        seconds = time.perf_counter() - start
    channels = sum(stats.channel_counts)
    print(f"channel statistics, {args.images} images, ResNet-50 blocks ({len(stats.levels)} levels, {channels} "
          f"channels, {len(stats.classes)} classes, top {args.top_n} exemplars)")
    print(f"  once per process and input size: tracing and receptive fields {once:.2f} s")
    print(f"  bare batched forward {bare:.2f} s, statistics {seconds:.2f} s")
    print(f"  ratio statistics / bare forward: {seconds / bare:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
