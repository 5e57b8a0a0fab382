"""How far to trust the evidence maps: deletion/insertion scores and the randomisation check.

    .venv/bin/python benchmarks/bench_faithfulness.py [--steps 50] [--input-size 224] [--images DIR]

EfficientNet-Lite0 (trained, offline) on every sample image (``*.jpg``, ``*.png``), each for its
top-1 class. For CAM, Grad-CAM, occlusion (patch 32, stride 16, mean colour) and LayerCAM (the
deepest ``blocks`` level's map; when the engine has it): deletion and insertion areas (RISE
protocol, blur baseline, see cnn_engine/faithfulness.py) beside a uniform random map and a
centred Gaussian prior, and the model-randomisation check (cnn_engine/sanity.py: mean |Spearman
rho| over three re-initialised copies, seeds 0 to 2, the same copies for all images). Then, per
method, the means over the images, how often the map beat each reference and passed the check
(mean |rho| < 0.5), and which method scored best per image.

It also checks, for every image on the native grid of the last feature map (h x w cells, 7x10
for the cat), that Grad-CAM there equals CAM divided by h * w (the gradient of a globally
average-pooled linear head is w_c / (h * w)). Every number depends on the model, the images and
the baseline. It takes about 30 minutes on 2 busy CPU cores (faithfulness costs 2 x (steps - 1)
forward passes per map, occlusion 260 per map and randomised copy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from cnn_engine.evidence import METHODS  # noqa: E402
from cnn_engine.evidence.cam import cam_layers, class_activation_map  # noqa: E402
from cnn_engine.evidence.gradcam import grad_cam  # noqa: E402
from cnn_engine.images import load_image  # noqa: E402
from cnn_engine.preprocess import Preprocessing, network_input  # noqa: E402
from cnn_engine.sanity import RHO_THRESHOLD, randomised_copy  # noqa: E402

NAMES = {"cam": "CAM", "gradcam": "Grad-CAM", "occlusion": "occlusion", "layercam": "LayerCAM"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per curve (default 50)")
    parser.add_argument("--input-size", type=int, default=224, help="network input size (default 224)")
    parser.add_argument("--images", default=str(ROOT / "sample_images"), help="folder of images (default the samples)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = cnn_engine.load_model("efficientnet_lite0", device="cpu")
    randomised = [randomised_copy(model, seed) for seed in range(3)]
    methods = [m for m in ("cam", "gradcam", "occlusion", "layercam") if m in METHODS]
    images = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".png"))

    print(f"efficientnet_lite0 (trained), input size {args.input_size}, RISE deletion/insertion with the blur "
          f"baseline, {args.steps} steps; sanity: mean |Spearman rho| against 3 re-initialised copies")
    print(f"{'image':<16} {'class':<22} {'map':<14} {'deletion':>9} {'insertion':>10} {'|rho|':>7}")
    rows: dict[str, list] = {m: [] for m in methods + ["random", "prior"]}
    for image in images:
        first = None
        for method in methods:
            vol = cnn_engine.compute_volume(model, image, layers="blocks" if method == "layercam" else ["input"],
                                            top_k=1, evidence=method, input_size=args.input_size)
            scores = cnn_engine.faithfulness(model, image, vol, steps=args.steps, input_size=args.input_size,
                                             references_from=first)
            check = cnn_engine.sanity_check(model, image, method, reference=vol, randomised=randomised)
            first = first or scores
            rows[method].append((scores.deletion, scores.insertion, check.abs_rho))
            label = f"{scores.target_label[:16]} ({scores.target_index})"
            print(f"{image.name:<16} {label:<22} {NAMES[method]:<14} {scores.deletion:9.3f} {scores.insertion:10.3f} "
                  f"{check.abs_rho:7.3f}", flush=True)
        for name in ("random", "prior"):
            reference = getattr(first, name)
            rows[name].append((reference.deletion, reference.insertion, float("nan")))
            print(f"{image.name:<16} {'':<22} {name + ' map':<14} {reference.deletion:9.3f} {reference.insertion:10.3f}")

    print(f"\nmeans over {len(images)} images (deletion: lower is better; insertion: higher is better)")
    print(f"{'map':<14} {'deletion':>9} {'insertion':>10} {'|rho|':>7}  beats random  beats prior  sanity")
    print(f"{'':<14} {'':>9} {'':>10} {'':>7}  (del / ins)   (del / ins)   passed")
    for name, values in rows.items():
        deletion = statistics.mean(v[0] for v in values)
        insertion = statistics.mean(v[1] for v in values)
        line = f"{NAMES.get(name, name + ' map'):<14} {deletion:9.3f} {insertion:10.3f}"
        if name in methods:
            line += f" {statistics.mean(v[2] for v in values):7.3f}  " + "  ".join(
                f"{_wins(values, rows[ref], 0, lower=True)} / {_wins(values, rows[ref], 1)}".center(11)
                for ref in ("random", "prior"))
            line += f"  {sum(v[2] < RHO_THRESHOLD for v in values)} / {len(values)}"
        print(line)
    for index, kind in ((1, "insertion"), (0, "deletion")):
        best = [min(methods, key=lambda m: rows[m][i][0]) if index == 0 else max(methods, key=lambda m: rows[m][i][1])
                for i in range(len(images))]
        print(f"best {kind} per image: " + ", ".join(f"{img.stem} {NAMES[b]}" for img, b in zip(images, best)))
    for image in images:
        print(gradcam_is_scaled_cam(model, image, args.input_size))
    print(f"({time.perf_counter() - started:.0f} s)")


def _wins(values: list, reference: list, index: int, lower: bool = False) -> int:
    return sum((v[index] < r[index]) if lower else (v[index] > r[index]) for v, r in zip(values, reference))


def gradcam_is_scaled_cam(model, image: Path, input_size: int) -> str:
    """Grad-CAM on the last feature map against CAM / (h * w), on the layer's own grid."""
    node, linear = cam_layers(model.module, model.catalog)
    level = model.levels([node])[0]
    features: dict[str, torch.Tensor] = {}
    graph = model.instrumented([level])
    x = network_input(load_image(image).image, Preprocessing(size=input_size), model.mean, model.std).tensor
    with torch.enable_grad():
        logits = graph(x.requires_grad_(True), lambda index, output: features.setdefault("map", output))
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    target = int(logits[0].argmax())
    grad = grad_cam(features["map"], logits[0, target]).double()
    with torch.no_grad():
        cam = class_activation_map(features["map"].detach(), linear, target).double()
    h, w = cam.shape
    error = float((grad * h * w - cam).abs().max() / cam.abs().max())
    return (f"Grad-CAM x h*w vs CAM on {node} ({h}x{w} cells, {image.name}): largest difference "
            f"{error:.1e} of CAM's largest value (Grad-CAM = CAM / {h * w})")


if __name__ == "__main__":
    main()
