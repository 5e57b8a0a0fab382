"""ParaView plugin overhead, as ratios measured in one run (run with pvpython):

    PV_PLUGIN_PATH=plugin pvpython benchmarks/bench_plugin.py [--repeats 15]

1. Source update with the model cached (a new image file each time, same pixels) over
   compute_volume on the same input: ResNet-50, blocks, K=4, 224 px short side.
2. CNN Layer Normalize update after a filter property change over that source update.
3. CNN Image Set (set-wide channels and normalisation, the source's defaults): a step already
   computed (kept in the source's cache of steps) over a new step, same settings.
Runs alternate, and each ratio compares runs made moments apart (see bench_engine.py).
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from paraview import simple  # noqa: E402

if not hasattr(simple, "CNNActivationVolume"):
    simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"), ns=globals())

import torch  # noqa: E402  (after the plugin, which sets up the project's environment)

import cnn_engine  # noqa: E402


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = Path(tempfile.mkdtemp(prefix="cnnvis-bench-"))
    images = [folder / "a.jpg", folder / "b.jpg"]
    for image in images:
        shutil.copyfile(ROOT / "sample_images" / "cat.jpg", image)

    source = simple.CNNActivationVolume(FileName=str(images[0]), Model="resnet50", Weights="random", LayerSet="blocks", TopK=4)
    normalize = simple.CNNLayerNormalize(Input=source)
    normalize.UpdatePipeline()
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    cnn_engine.compute_volume(model, images[0])

    state = {"image": 0, "normalization": 0}

    def source_update():
        state["image"] ^= 1
        source.FileName = str(images[state["image"]])
        source.UpdatePipeline()

    def engine():
        cnn_engine.compute_volume(model, images[0], layers="blocks", top_k=4)

    def filter_update():
        state["normalization"] ^= 1
        normalize.Normalization = ["PerLevelMinMax", "PerLevelZScore"][state["normalization"]]
        normalize.UpdatePipeline()

    runs = source.GetClientSideObject().forward_passes
    pairs = [(timed(engine), timed(source_update)) for _ in range(args.repeats)]
    assert source.GetClientSideObject().forward_passes == runs + args.repeats
    filter_pairs = [(timed(source_update), timed(filter_update)) for _ in range(args.repeats)]
    median = statistics.median
    print(f"ParaView plugin, ResNet-50 blocks K=4, cat at 337x224 px, {args.repeats} alternating pairs")
    print(f"  compute_volume:                     {median(e for e, _ in pairs) * 1e3:7.1f} ms")
    print(f"  source update (model cached):       {median(s for _, s in pairs) * 1e3:7.1f} ms  "
          f"ratio {median(s / e for e, s in pairs):.3f}  (target <= 1.2)")
    print(f"  filter update (normalisation):      {median(f for _, f in filter_pairs) * 1e3:7.1f} ms  "
          f"ratio to source update {median(f / s for s, f in filter_pairs):.3f}  (target <= 0.1)")
    sys.stdout.flush()
    image_set_steps(folder, args.repeats)


def image_set_steps(folder: Path, repeats: int) -> None:
    """A new time step of the CNN Image Set against one it computed before (still in its cache)."""
    images = folder / "set"
    images.mkdir()
    for i in range(repeats + 1):
        shutil.copyfile(ROOT / "sample_images" / "cat.jpg", images / f"cat_{i}.jpg")
    source = simple.CNNImageSet(Images=str(images), Model="resnet50", Weights="random", LayerSet="blocks", TopK=4)
    source.UpdatePipeline(time=0)  # the first pass over the set, and step 0
    algorithm = source.GetClientSideObject()
    runs = algorithm.forward_passes
    pairs = []
    for step in range(1, repeats + 1):
        new = timed(lambda: source.UpdatePipeline(time=step))
        kept = timed(lambda: source.UpdatePipeline(time=step - 1))
        pairs.append((new, kept))
    assert algorithm.forward_passes == runs + repeats and algorithm.set_scans == 1
    median = statistics.median
    print(f"CNN Image Set, ResNet-50 blocks K=4, set channels and normalisation, {repeats + 1} images at 337x224 px")
    print(f"  new time step:                      {median(n for n, _ in pairs) * 1e3:7.1f} ms")
    print(f"  time step computed before:          {median(k for _, k in pairs) * 1e3:7.1f} ms  "
          f"ratio {median(k / n for n, k in pairs):.3f}  (target <= 0.1)")
    sys.stdout.flush()


main()
