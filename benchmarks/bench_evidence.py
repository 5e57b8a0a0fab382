"""Cost of class evidence maps, as ratios measured in one run:

    .venv/bin/python benchmarks/bench_evidence.py [--repeats 11]

ResNet-50 (random weights: timing does not depend on them), blocks, K=4, 224x224 input.
1. CAM: compute_volume with evidence="cam" over compute_volume without (target <= 1.05).
2. Grad-CAM: its extra time over compute_volume without, in units of one backward pass of the
   network (a full backward from the class score to the input, timed here; target <= 1).
3. Occlusion at patch 32, stride 16: occluded images per second, batched.
Runs alternate in pairs, each ratio a median of per-pair ratios (see bench_engine.py).
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
from benchmarks.bench_engine import interleaved, square_image, timed  # noqa: E402
from cnn_engine.preprocess import Preprocessing, network_input  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    image = square_image(224)
    x = network_input(image, Preprocessing(), model.mean, model.std).tensor

    def plain():
        cnn_engine.compute_volume(model, image, top_k=4)

    def cam():
        cnn_engine.compute_volume(model, image, top_k=4, evidence="cam")

    def gradcam():
        cnn_engine.compute_volume(model, image, top_k=4, evidence="gradcam")

    def forward_backward():
        with torch.enable_grad():
            y = model.module(x.clone().requires_grad_(True))
            y[0, 0].backward()

    def forward():
        with torch.inference_mode():
            model.module(x)

    _, cam_ms, cam_ratio = interleaved(plain, cam, args.repeats)
    plain_s, grad_s, _ = interleaved(plain, gradcam, args.repeats)
    forward_s, both_s, _ = interleaved(forward, forward_backward, args.repeats)
    backward_s = both_s - forward_s
    settings = cnn_engine.evidence.EvidenceSettings("occlusion", patch=32, stride=16)
    start = time.perf_counter()
    vol = cnn_engine.compute_volume(model, image, layers=["input"], top_k=1, evidence=settings)
    occlusion_s = time.perf_counter() - start
    images = vol.evidence_info.details["images"]

    print(f"ResNet-50 on the CPU, {args.threads} threads, blocks K=4, 224x224, {args.repeats} alternating pairs")
    print(f"  CAM: compute_volume with / without:          ratio {cam_ratio:.3f}  (target <= 1.05)")
    print(f"  Grad-CAM: {grad_s * 1e3:.1f} ms vs {plain_s * 1e3:.1f} ms without; one backward pass {backward_s * 1e3:.1f} ms;")
    print(f"    extra time / one backward pass:            ratio {(grad_s - plain_s) / backward_s:.3f}  (target <= 1)")
    print(f"  Occlusion, patch 32, stride 16: {images} occluded images in {occlusion_s:.1f} s = "
          f"{images / occlusion_s:.1f} images/s (batches of {settings.batch_size})")


if __name__ == "__main__":
    main()
