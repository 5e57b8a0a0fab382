"""Image sets: time and memory of a whole set, as ratios measured in one run on this machine.

    .venv/bin/python benchmarks/bench_sets.py [--images 64] [--format netcdf4] [--memory]

1. A set of --images JPEG files at 224 px (made from the sample photographs: crops, flips and
   rotations, so every file differs and is decoded), ResNet-50 (random weights: timing does not
   depend on them), ``blocks``, K=4, per-image channels, every volume written as netCDF
   (--format): total time over the bare batched forward of the same images (already decoded,
   batch 16, no capture). Targets: <= 1.3 (per-image channels), <= 2.3 (set-wide channels and
   normalisation: two passes).
2. --memory: peak memory (max RSS growth) of 256 images against 64, each in a fresh process.
   Target: within 10 %.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import queue
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from cnn_engine.images import load_image  # noqa: E402
from cnn_engine.preprocess import Preprocessing, network_input  # noqa: E402
from cnn_engine.runner import MAX_AUTO_BATCH  # noqa: E402


def make_set(folder: Path, count: int, size: int = 224) -> list[Path]:
    """``count`` different JPEG files of ``size`` x ``size`` pixels from the sample photographs."""
    sources = sorted((ROOT / "sample_images").glob("*.jpg"))
    paths = []
    for i in range(count):
        picture = Image.open(sources[i % len(sources)]).convert("RGB")
        centre = ((i // len(sources)) % 5) / 4  # where the square crop sits along the long side
        fitted = ImageOps.fit(picture, (size, size), centering=(centre, centre))
        fitted = fitted.rotate(3 * (i % 7)) if i % 2 else ImageOps.mirror(fitted)
        path = folder / f"img_{i:04d}.jpg"
        fitted.save(path, quality=90)
        paths.append(path)
    return paths


def bare_forward(model, paths: list[Path], batch: int = 16) -> float:
    """Seconds for the network alone on the decoded images, in batches."""
    pre = Preprocessing(fit="short-side", size=224)
    tensors = [network_input(load_image(p).image, pre, model.mean, model.std).tensor for p in paths]
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(tensors), batch):
            model.module(torch.cat(tensors[i:i + batch]))
    return time.perf_counter() - start


def pipeline(model, paths: list[Path], out: Path, channels: str, normalization: str, fmt: str) -> float:
    """Seconds for compute_volumes with every volume written on a writer thread (as the CLI does)."""
    from cnn_engine.netcdf import write_netcdf

    done: queue.Queue = queue.Queue(maxsize=MAX_AUTO_BATCH)  # as the CLI: one batch waits

    def writer() -> None:
        while (item := done.get()) is not None:
            name, volume = item
            write_netcdf(volume, out / f"{name}.nc", **({"format": fmt} if fmt else {}))

    thread = threading.Thread(target=writer)
    start = time.perf_counter()
    thread.start()
    for volume in cnn_engine.compute_volumes(model, paths, channels=channels, normalization=normalization):
        done.put((Path(volume.provenance.image_path).stem, volume))
    done.put(None)
    thread.join()
    return time.perf_counter() - start


def peak_rss(count: int) -> int:
    """Peak RSS growth (bytes) while a fresh process exports ``count`` images: the high-water mark
    is reset (``/proc/self/clear_refs``) once the model and the files are ready, so what came
    before (imports, building the model) does not count."""
    code = f"""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
import cnn_engine
from bench_sets import make_set, pipeline, status_bytes
with tempfile.TemporaryDirectory() as tmp:
    paths = make_set(Path(tmp), {count})
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    out = Path(tmp) / "out"; out.mkdir()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    base = status_bytes("VmRSS")
    pipeline(model, paths, out, "per-image", "per-level-minmax", None)
    print(status_bytes("VmHWM") - base)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (kB there) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--format", default=None, help="netCDF format for the files (default: the engine's default)")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory for 256 vs 64 images")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_set(Path(tmp), args.images)
        bare_forward(model, paths[:16])  # warm-up: allocator, thread pool
        out = Path(tmp) / "out"
        out.mkdir()
        bare = bare_forward(model, paths)
        per_image = pipeline(model, paths, out, "per-image", "per-level-minmax", args.format)
        bare_again = bare_forward(model, paths)
        set_wide = pipeline(model, paths, out, "set", "set", args.format)
        reference = (bare + bare_again) / 2
        size = sum(p.stat().st_size for p in out.glob("*.nc")) / len(paths)
        print(f"{args.images} images, ResNet-50, blocks, K=4, 224 px, {torch.get_num_threads()} threads; "
              f"one file {size / 2**20:.1f} MB")
        print(f"bare batched forward: {bare:.2f} s and {bare_again:.2f} s")
        print(f"per-image channels, written: {per_image:.2f} s   ratio {per_image / reference:.2f}  (target 1.3)")
        print(f"set channels + set normalisation (two passes), written: {set_wide:.2f} s   "
              f"ratio {set_wide / reference:.2f}  (target 2.3)")
    if args.memory:
        small, large = peak_rss(64), peak_rss(256)
        print(f"peak memory growth: 64 images {small / 2**20:.0f} MiB, 256 images {large / 2**20:.0f} MiB, "
              f"ratio {large / small:.2f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
