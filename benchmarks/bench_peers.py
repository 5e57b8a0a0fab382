"""The engine's CAM, Grad-CAM and occlusion against torch-cam, pytorch-grad-cam and Captum, in one run.

    .venv/bin/python benchmarks/bench_peers.py [--repeats 7] [--threads 2] [--images cat.jpg ...]

The peers are installed for this benchmark only (pyproject.toml's ``peers`` extra, installed by
scripts/setup.sh); nothing in cnn_engine/ or plugin/ imports them. They run on a copy of the
engine's model (same weights), so their hooks never touch the engine's module.

Agreement: Pearson correlation between the engine's map and each peer's, on the same model,
normalised image tensor (the engine's preprocessing), target class (the image's top-1) and layer,
for every sample image (--images) and two models: the offline trained efficientnet_lite0 and
ResNet-50 with random weights. The lowest r over the images is printed (target >= 0.999). The
maps are compared where the methods are defined alike:

* CAM and Grad-CAM on the layer's own (h, w) grid. The engine draws them on the input grid with
  each cell centred on its receptive field (see cnn_engine.resample); the peers resize bilinearly
  from the corners, so upsampled maps differ by design. Layers: the default Grad-CAM layer (the
  last of the ``blocks`` set) and a middle one; CAM reads the last feature map. torch-cam's CAM
  has no ReLU: its unnormalised map gets one here. pytorch-grad-cam scales min-max (an affine map:
  r unchanged) and is asked to stay on the layer's grid. It keeps every call of a hooked module
  and uses the first, so at efficientnet_lite0's ``_swish_1`` (the module ``_swish``, called
  twice: stem and head) it maps the stem (112x168 for the cat): n/a there.
* Occlusion on the input grid: patch 32, stride 16, baseline 0 in normalised space (the engine's
  occluder ``mean``), the target's softmax probability, batches of 16. Captum's windows stop where
  a whole stride no longer fits, the engine adds one at the far border: inputs are cropped to the
  largest size where both use the same windows (the cat, 224x337, to 224x336).

Time: ResNet-50 (random weights: timing does not depend on them), the cat centre-cropped to
224x224, --threads threads, model loaded, peer hooks attached before timing. Each line alternates
the engine and the peer --repeats times after a warm-up (occlusion: no warm-up) and gives medians
and the median per-pair ratio engine / peer (see bench_engine.py). Timed is the same work on both
sides:

* Grad-CAM: one map for one image on layer4.2's grid, forward and backward included: the engine's
  cnn_engine.evidence.gradcam.grad_cam_map (what compute_volume runs for it); torch-cam:
  ``model(x)`` then ``extractor(class, scores)``; Captum: ``LayerGradCam.attribute``;
  pytorch-grad-cam: ``cam(x, targets)`` (its backward runs through the whole network, down to
  the first layer's weights). Target <= 1.0x torch-cam.
* Occlusion: one map for one image, 169 occluded copies plus the unoccluded forward, no gradients.
  Target <= 1.0x Captum.
* The volume without evidence: compute_volume(blocks, K=4) over the bare forward ``model(x)``, as
  bench_engine.py's first line. Target <= 1.15.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from benchmarks.bench_engine import interleaved, square_image, timed  # noqa: E402
from cnn_engine.evidence.cam import cam_layers, class_activation_map  # noqa: E402
from cnn_engine.evidence.gradcam import grad_cam_map  # noqa: E402
from cnn_engine.evidence.occlusion import occlusion_map  # noqa: E402
from cnn_engine.images import load_image  # noqa: E402
from cnn_engine.layers import LevelSpec  # noqa: E402
from cnn_engine.preprocess import Preprocessing, network_input  # noqa: E402

try:
    import pytorch_grad_cam
    from captum.attr import LayerGradCam, Occlusion
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam.methods import CAM as TorchCamCAM
    from torchcam.methods import GradCAM as TorchCamGradCAM
except ImportError as missing:
    sys.exit(f"bench_peers: {missing.name} is missing: install the peers with `bash scripts/setup.sh` "
             "(pyproject.toml's peers extra)")

PATCH, STRIDE, BATCH = 32, 16, 16

#: Per model: CAM's feature module and classifier for the peers, and the Grad-CAM layers as
#: (engine level name, the peers' module whose output that level is).
LAYERS = {
    "efficientnet_lite0": {"cam": ("_swish", "_fc"), "gradcam": [("_swish_1", "_swish"), ("_blocks.10", "_blocks.10")]},
    "resnet50": {"cam": ("layer4", "fc"), "gradcam": [("layer4.2", "layer4.2"), ("layer3.5", "layer3.5")]},
}
#: Where a peer reads another tensor than the named level (see the module docstring).
NOT_ALIKE = {("pytorch-grad-cam", "_swish")}


class NativeGridGradCAM(pytorch_grad_cam.GradCAM):
    """pytorch-grad-cam's Grad-CAM left on the layer's grid (it resizes to the input otherwise)."""

    def get_target_width_height(self, input_tensor: torch.Tensor) -> None:
        return None


def pearson(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps of different sizes: {a.shape} and {b.shape}")
    return float(np.corrcoef(a, b)[0, 1])


def crop_for_windows(x: torch.Tensor) -> torch.Tensor:
    """``x`` cropped so that (side - PATCH) is a multiple of STRIDE: Captum's windows = the engine's."""
    height, width = x.shape[2:]
    return x[:, :, : height - (height - PATCH) % STRIDE, : width - (width - PATCH) % STRIDE]


# The engine's maps, by its own code paths.

def engine_cam(model: cnn_engine.CnnModel, x: torch.Tensor, target: int) -> torch.Tensor:
    node, linear = cam_layers(model.module, model.catalog)
    kept: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        model.instrumented([LevelSpec("cam", node, "")])(x, lambda index, value: kept.setdefault("features", value))
        return class_activation_map(kept["features"], linear, target)


def engine_occlusion(model: cnn_engine.CnnModel, x: torch.Tensor, target: int) -> torch.Tensor:
    with torch.inference_mode():
        probability = float(torch.softmax(model.module(x).float(), dim=1)[0, target])
    values, _ = occlusion_map(model.module, x, target, probability, PATCH, STRIDE, "mean", BATCH)
    return values


# The peers' maps, each library used as its documentation shows.

def torchcam_cam(peer: nn.Module, x: torch.Tensor, target: int, layer: str, fc: str) -> torch.Tensor:
    with TorchCamCAM(peer, layer, fc) as extractor, torch.inference_mode():
        scores = peer(x)
        return torch.relu(extractor(class_idx=target, scores=scores, normalized=False)[0][0])


def torchcam_gradcam(peer: nn.Module, x: torch.Tensor, target: int, layer: str) -> torch.Tensor:
    with TorchCamGradCAM(peer, layer) as extractor:
        return extractor(class_idx=target, scores=peer(x), normalized=False)[0][0]


def gradcam_library(peer: nn.Module, x: torch.Tensor, target: int, layer: str) -> np.ndarray:
    with NativeGridGradCAM(peer, [peer.get_submodule(layer)]) as cam:
        return cam(x, [ClassifierOutputTarget(target)])[0]


def captum_gradcam(peer: nn.Module, x: torch.Tensor, target: int, layer: str) -> torch.Tensor:
    return LayerGradCam(peer, peer.get_submodule(layer)).attribute(x, target=target, relu_attributions=True)[0, 0].detach()


def captum_occlusion(peer: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    occlusion = Occlusion(lambda batch: torch.softmax(peer(batch), dim=1))
    return occlusion.attribute(x, sliding_window_shapes=(3, PATCH, PATCH), strides=(3, STRIDE, STRIDE), baselines=0,
                               target=target, perturbations_per_eval=BATCH)[0, 0]


@dataclass
class Row:
    model: str
    method: str
    layer: str
    grid: str
    peers: dict[str, list[float]]


def agreement(model: cnn_engine.CnnModel, images: list[Path]) -> list[Row]:
    """Per method and layer, the correlation with each peer on every image."""
    peer = copy.deepcopy(model.module)
    cam_module, fc = LAYERS[model.name]["cam"]
    cam_node, _ = cam_layers(model.module, model.catalog)
    rows = {("CAM", cam_node): Row(model.name, "CAM", cam_node, "layer", {"torch-cam": []})}
    for level, _ in LAYERS[model.name]["gradcam"]:
        rows[("Grad-CAM", level)] = Row(model.name, "Grad-CAM", level, "layer",
                                        {"torch-cam": [], "pytorch-grad-cam": [], "Captum": []})
    rows[("occlusion", "")] = Row(model.name, "occlusion", "input", "input", {"Captum": []})
    for path in images:
        x = network_input(load_image(path).image, Preprocessing(), model.mean, model.std).tensor
        with torch.inference_mode():
            target = int(model.module(x).argmax())
        rows[("CAM", cam_node)].peers["torch-cam"].append(
            pearson(engine_cam(model, x, target), torchcam_cam(peer, x, target, cam_module, fc)))
        for level, module in LAYERS[model.name]["gradcam"]:
            ours = grad_cam_map(model, x, level, target)
            peers = rows[("Grad-CAM", level)].peers
            peers["torch-cam"].append(pearson(ours, torchcam_gradcam(peer, x, target, module)))
            peers["Captum"].append(pearson(ours, captum_gradcam(peer, x, target, module)))
            if ("pytorch-grad-cam", module) not in NOT_ALIKE:
                peers["pytorch-grad-cam"].append(pearson(ours, gradcam_library(peer, x, target, module)))
        cropped = crop_for_windows(x)
        rows[("occlusion", "")].peers["Captum"].append(
            pearson(engine_occlusion(model, cropped, target), captum_occlusion(peer, cropped, target)))
    return list(rows.values())


def alternating(engine: Callable[[], object], peer: Callable[[], object], repeats: int, warm_up: bool = True) -> tuple[float, float, float]:
    """Median engine time, median peer time and median per-pair ratio engine / peer (seconds)."""
    if warm_up:
        peer_s, engine_s, ratio = interleaved(peer, engine, repeats)
        return engine_s, peer_s, ratio
    pairs = [(timed(peer), timed(engine)) for _ in range(repeats)]
    return (statistics.median(e for _, e in pairs), statistics.median(p for p, _ in pairs),
            statistics.median(e / p for p, e in pairs))


def timing(repeats: int) -> dict[str, tuple[float, float, float]]:
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    peer = copy.deepcopy(model.module)
    image = square_image(224)
    x = network_input(image, Preprocessing(), model.mean, model.std).tensor
    with torch.inference_mode():
        target = int(model.module(x).argmax())
    results = {}

    def ours() -> torch.Tensor:
        return grad_cam_map(model, x, "layer4.2", target)

    with TorchCamGradCAM(peer, "layer4.2") as extractor:
        results["torch-cam"] = alternating(ours, lambda: extractor(class_idx=target, scores=peer(x), normalized=False), repeats)
    layer_grad_cam = LayerGradCam(peer, peer.get_submodule("layer4.2"))
    results["Captum"] = alternating(ours, lambda: layer_grad_cam.attribute(x, target=target, relu_attributions=True), repeats)
    with NativeGridGradCAM(peer, [peer.get_submodule("layer4.2")]) as cam:
        results["pytorch-grad-cam"] = alternating(ours, lambda: cam(x, [ClassifierOutputTarget(target)]), repeats)
    peer.zero_grad(set_to_none=True)  # pytorch-grad-cam's full backward left weight gradients
    results["occlusion"] = alternating(lambda: engine_occlusion(model, x, target), lambda: captum_occlusion(peer, x, target),
                                       max(1, (repeats + 1) // 2), warm_up=False)

    def forward() -> None:
        with torch.inference_mode():
            model.module(x)

    bare, volume, ratio = interleaved(forward, lambda: cnn_engine.compute_volume(model, image, layers="blocks", top_k=4), repeats)
    results["volume"] = (volume, bare, ratio)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="alternating pairs per timing (occlusion: half)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", nargs="+", default=None, help="sample image file names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = ROOT / "sample_images"
    images = [folder / name for name in args.images] if args.images else sorted(
        p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))

    met = []
    print(f"Agreement with the peers, Pearson r, lowest over {len(images)} sample image(s) ({', '.join(p.name for p in images)}), "
          "target class = the image's top-1 (target >= 0.999):")
    for name, weights in (("efficientnet_lite0", "packaged"), ("resnet50", "random")):
        model = cnn_engine.load_model(name, weights=weights, device="cpu")
        for row in agreement(model, images):
            cells = []
            for peer, values in row.peers.items():
                if values:
                    cells.append(f"{peer} {min(values):.6f}")
                    met.append(min(values) >= 0.999)
                else:
                    cells.append(f"{peer} n/a")
            grid = "on the layer's grid" if row.grid == "layer" else f"on the input grid, patch {PATCH}, stride {STRIDE}"
            print(f"  {name} ({weights}) {row.method} {row.layer}, {grid}: {'; '.join(cells)}")

    t = timing(args.repeats)
    print(f"Time, ResNet-50 on the CPU, {args.threads} threads, cat 224x224, medians of alternating runs "
          f"(ratio = median of engine / peer per pair):")
    for peer in ("torch-cam", "Captum", "pytorch-grad-cam"):
        ours, theirs, ratio = t[peer]
        target = "  (target <= 1.0)" if peer == "torch-cam" else ""
        print(f"  Grad-CAM, layer4.2, one map: engine {ours * 1e3:6.1f} ms, {peer} {theirs * 1e3:6.1f} ms: ratio {ratio:.3f}{target}")
    ours, theirs, ratio = t["occlusion"]
    print(f"  Occlusion, patch {PATCH}, stride {STRIDE}, 169 occluded images: engine {ours:.2f} s, Captum {theirs:.2f} s: "
          f"ratio {ratio:.3f}  (target <= 1.0)")
    volume, bare, ratio = t["volume"]
    print(f"  Volume without evidence, blocks K=4: {volume * 1e3:.1f} ms, bare forward {bare * 1e3:.1f} ms: "
          f"ratio {ratio:.3f}  (target <= 1.15)")
    met += [t["torch-cam"][2] <= 1.0, t["occlusion"][2] <= 1.0, ratio <= 1.15]
    print(f"Targets met: {sum(met)} of {len(met)}")


if __name__ == "__main__":
    main()
