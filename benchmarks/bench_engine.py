"""Engine overhead and memory, as ratios measured in one run on this machine.

    .venv/bin/python benchmarks/bench_engine.py [--repeats 15] [--threads 2]

1. ResNet-50, blocks, K=4, 224x224 input, model loaded: compute_volume / bare model(x).
2. ResNet-50, all spatial operations (173 levels), K=1 and K=4: compute_volume / bare forward,
   beside torchvision's feature extractor capturing the same operations (no ranking, no resampling).
3. ResNet-50, all levels, K=4, 512x512 input, in a fresh process: peak memory above the loaded
   model, against 2 x the output volume + the largest single layer output.
Times are medians over --repeats runs after a warm-up; the random-weight model is used because
timing does not depend on the weights. compute_volume is timed twice: with the caller dropping
each volume (the model then recycles the output buffer) and keeping every volume (fresh memory,
whose page faults are expensive on this machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from cnn_engine.images import load_image  # noqa: E402
from cnn_engine.preprocess import Preprocessing, fit_image, network_input  # noqa: E402


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def interleaved(reference, candidate, repeats: int) -> tuple[float, float, float]:
    """Median times of ``reference`` and ``candidate`` and the median of their per-pair ratio.

    The two run alternately, so that the machine's drift (a shared, noisy host) hits both
    alike; each ratio compares runs made moments apart.
    """
    reference(), candidate()  # warm-up: tracing caches, allocator, thread pool
    pairs = [(timed(reference), timed(candidate)) for _ in range(repeats)]
    return (statistics.median(r for r, _ in pairs), statistics.median(c for _, c in pairs),
            statistics.median(c / r for r, c in pairs))


def square_image(size: int) -> Image.Image:
    cat = load_image(ROOT / "sample_images" / "cat.jpg").image
    return fit_image(cat, Preprocessing(fit="center-crop", size=size, max_side=max(1024, size)))


def overhead(model: cnn_engine.CnnModel, repeats: int) -> dict[str, float]:
    image = square_image(224)
    x = network_input(image, Preprocessing(), model.mean, model.std).tensor

    def forward():
        with torch.inference_mode():
            model.module(x)

    def volume(layers: str, k: int):
        # The caller drops each volume before the next, as a sweep that writes files does, so the
        # model recycles the output buffer.
        return lambda: cnn_engine.compute_volume(model, image, layers=layers, top_k=k)

    def volume_kept(layers: str, k: int):
        # The caller keeps every volume: each one is written into fresh memory.
        kept = []
        return lambda: kept.append(cnn_engine.compute_volume(model, image, layers=layers, top_k=k))

    from torchvision.models.feature_extraction import create_feature_extractor

    nodes = [level.node for level in model.levels("all")[1:]]
    extractor = create_feature_extractor(model.module, {n: n for n in nodes})

    def extract():
        with torch.inference_mode():
            extractor(x)

    results = {}
    for label, function in [
        ("blocks_k4", volume("blocks", 4)),
        ("blocks_k4_kept", volume_kept("blocks", 4)),
        ("all_k1", volume("all", 1)),
        ("all_k1_kept", volume_kept("all", 1)),
        ("all_k4", volume("all", 4)),
        ("torchvision_extractor_all", extract),
    ]:
        bare, seconds, ratio = interleaved(forward, function, repeats)
        results[f"{label}_ms"] = seconds * 1e3
        results[f"{label}_forward_ms"] = bare * 1e3
        results[f"{label}_ratio"] = ratio
    return results


def memory_child(size: int) -> None:
    """Run in a fresh process: print peak RSS growth of one compute_volume at ``size`` px."""
    torch.set_num_threads(2)
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    image = square_image(size)
    levels = model.levels("all")
    model.instrumented(levels)
    largest = 0

    def biggest(index, value):
        nonlocal largest
        largest = max(largest, value.numel() * value.element_size())

    with torch.inference_mode():  # layer output sizes at this input, measured before the baseline
        model.instrumented(levels)(network_input(image, Preprocessing(size=size, max_side=max(1024, size)), model.mean, model.std).tensor, biggest)
    before = _status_bytes("VmHWM")
    current_before = _status_bytes("VmRSS")
    vol = cnn_engine.compute_volume(model, image, layers="all", top_k=4, input_size=size, max_side=max(1024, size))
    peak = _status_bytes("VmHWM")
    output = sum(a.nbytes for a in vol.arrays.values())
    print(json.dumps({
        "size": size, "levels": len(vol.levels), "output_bytes": output, "largest_layer_bytes": largest,
        "baseline_peak_rss": before, "baseline_current_rss": current_before, "peak_rss": peak,
    }))


def _status_bytes(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process image. Not ru_maxrss: Linux carries that over
    from the parent through fork and exec, so a large parent would hide the child's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory(size: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(size)], capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    growth = m["peak_rss"] - max(m["baseline_peak_rss"], m["baseline_current_rss"])
    budget = 2 * m["output_bytes"] + m["largest_layer_bytes"]
    return {
        "size": size,
        "levels": m["levels"],
        "output_mb": m["output_bytes"] / 1e6,
        "largest_layer_mb": m["largest_layer_bytes"] / 1e6,
        "peak_growth_mb": growth / 1e6,
        "budget_mb": budget / 1e6,
        "growth_over_budget": growth / budget,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-size", type=int, default=512)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    torch.set_num_threads(args.threads)
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    r = overhead(model, args.repeats)
    print(f"ResNet-50 on the CPU, {args.threads} threads, 224x224 input; each line alternates {args.repeats} runs with the")
    print(f"bare forward model(x) (median {r['blocks_k4_forward_ms']:.1f} ms in the first pairing) and gives the median per-pair ratio")
    print(f"  compute_volume blocks, K=4 (19 levels):     {r['blocks_k4_ms']:7.1f} ms  ratio {r['blocks_k4_ratio']:.3f}  (target <= 1.15)")
    print(f"    same, every volume kept (fresh memory):   {r['blocks_k4_kept_ms']:7.1f} ms  ratio {r['blocks_k4_kept_ratio']:.3f}")
    print(f"  compute_volume all, K=1 (173 levels):       {r['all_k1_ms']:7.1f} ms  ratio {r['all_k1_ratio']:.3f}  (target <= 1.4)")
    print(f"    same, every volume kept (fresh memory):   {r['all_k1_kept_ms']:7.1f} ms  ratio {r['all_k1_kept_ratio']:.3f}")
    print(f"  compute_volume all, K=4 (173 levels):       {r['all_k4_ms']:7.1f} ms  ratio {r['all_k4_ratio']:.3f}")
    print(f"  torchvision feature extractor, same nodes:  {r['torchvision_extractor_all_ms']:7.1f} ms  ratio {r['torchvision_extractor_all_ratio']:.3f}")
    m = memory(args.memory_size)
    print(f"ResNet-50, all levels, K=4, {m['size']}x{m['size']} input, fresh process")
    print(f"  output volume {m['output_mb']:.0f} MB ({m['levels']} levels), largest layer output {m['largest_layer_mb']:.1f} MB")
    print(f"  peak memory above the loaded model: {m['peak_growth_mb']:.0f} MB; budget 2 x output + largest layer = "
          f"{m['budget_mb']:.0f} MB; ratio {m['growth_over_budget']:.3f} (target < 1)")


if __name__ == "__main__":
    main()
