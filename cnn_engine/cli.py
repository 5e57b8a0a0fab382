"""The ``cnnvis`` command line: export volumes, list layers and models, run the demo."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import traceback
import warnings
from pathlib import Path
from typing import Sequence

from . import __version__
from .atomic import describe_file_type, os_error_advice
from .errors import CnnEngineError, ImageError, OutputError
from .evidence import METHODS, OCCLUDERS, EvidenceSettings
from .images import IMAGE_EXTENSIONS
from .compute import level_geometry
from .layers import LAYER_SETS, REFERENCE_SIZE, probe_shapes
from .models import DEFAULT_MODEL, DEVICES, OFFLINE_MODEL, available_models, load_default_model, load_model
from .netcdf import check_writable
from .normalize import NORMALIZATIONS
from .preprocess import FITS, Preprocessing, input_grid
from .ranking import RANK_BY
from .resample import INTERPOLATIONS

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    warnings.showwarning = lambda message, *rest, **kw: print(f"cnnvis: note: {message}", file=sys.stderr)
    try:
        return args.run(args)
    except CnnEngineError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"cnnvis: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:  # beyond the checks made before allocating (compute_volume's buffer)
        print("cnnvis: error: out of memory: lower --top-k, choose fewer --layers or a smaller --input-size",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnnvis: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnvis",
        description="Look inside a CNN: layer activations of an image as a volume for ParaView.",
    )
    parser.add_argument("--version", action="version", version=f"cnnvis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser("export", help="write one netCDF volume per image")
    export.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files, or folders of images")
    export.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="a .nc file (one image) or a folder, created if missing, for <image name>.nc files")
    _model_options(export)
    _volume_options(export)
    _evidence_options(export, required=False)
    export.set_defaults(run=_export)

    explain = commands.add_parser("explain", help="draw a class evidence map (CAM, Grad-CAM, occlusion) over an image")
    explain.add_argument("image", help="the image")
    explain.add_argument("-o", "--output", required=True, metavar="PICTURE", help="the picture to write (.png, .jpg)")
    explain.add_argument("--nc", metavar="FILE", help="also write the volume with the evidence map as netCDF")
    _model_options(explain)
    _evidence_options(explain, required=True)
    _volume_options(explain)
    _trust_options(explain)
    explain.set_defaults(run=_explain)

    demo = commands.add_parser(
        "demo", help="export a sample image's ResNet-50 volume and print its levels and top-5 predictions"
    )
    demo.add_argument("image", nargs="?", default=str(_sample_image()), help="default: the cat sample image")
    demo.add_argument("-o", "--output", default="out", metavar="OUT", help="folder or .nc file (default: out/)")
    demo.add_argument("--device", choices=DEVICES, default="auto")
    demo.set_defaults(run=_demo)

    layers = commands.add_parser("layers", help="list the levels of a model's layer set")
    layers.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
    layers.add_argument("--layers", default="blocks", help=f"layer set ({', '.join(LAYER_SETS)}) or comma-separated names")
    layers.add_argument("--image", default=None,
                        help="show the shapes on the input grid this image gets (default: a square input)")
    layers.add_argument("--input-size", type=int, default=REFERENCE_SIZE,
                        help=f"network input size in pixels (default {REFERENCE_SIZE}), as for export")
    layers.add_argument("--fit", choices=FITS, default="short-side",
                        help="how the image meets the input size (default short-side), as for export")
    layers.set_defaults(run=_layers)

    paraview = commands.add_parser(
        "paraview", help="open ParaView with the plugin loaded (and an image's volume, or a state file)"
    )
    paraview.add_argument("image", nargs="?",
                          help="an image to show: the input, an early, a middle and the last level of its volume")
    paraview.add_argument("--state", help="a ParaView state file (.pvsm) to open, e.g. examples/cat_efficientnet_lite0.pvsm")
    paraview.add_argument("--model", default=DEFAULT_MODEL,
                          help=f"model for IMAGE (default {DEFAULT_MODEL}; offline, with default weights: {OFFLINE_MODEL})")
    paraview.add_argument("--weights", default="default", help="weights for IMAGE (default: the model's default)")
    paraview.add_argument("--no-settings", action="store_true", help="start ParaView without reading or saving its user settings (--dr)")
    paraview.set_defaults(run=_paraview)

    models = commands.add_parser("models", help="list the model names")
    models.set_defaults(run=_models)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=None,
                       help=f"torchvision model name or {OFFLINE_MODEL} (default {DEFAULT_MODEL}; without its ImageNet "
                            f"weights and with no --weights given, the trained offline {OFFLINE_MODEL})")
    group.add_argument("--weights", default=None,
                       help="the model's default (IMAGENET1K_V1 for resnet50), another torchvision weights name, DEFAULT, "
                            "random, or a .pth/TorchScript file")
    group.add_argument("--trust-torchscript", action="store_true",
                       help="load a TorchScript weights file, which runs code stored in it: only for files from a "
                            "source you trust (refused without this)")
    group.add_argument("--device", choices=DEVICES, default="auto")


def _volume_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("volume")
    group.add_argument("--layers", default="blocks", help=f"layer set ({', '.join(LAYER_SETS)}) or comma-separated layer names")
    group.add_argument("--top-k", type=int, default=4, help="channels kept per layer (default 4)")
    group.add_argument("--rank-by", choices=RANK_BY, default="mean", help="channel ranking: mean, max, l2 activation, or effect / ablation on the --target class "
                            "(default mean; ablation runs the network once per channel: use few layers)")
    group.add_argument("--normalization", choices=NORMALIZATIONS, default="per-level-minmax",
                       help="scaling of the exported values (default per-level-minmax)")
    group.add_argument("--input-size", type=int, default=224, help="network input size in pixels (default 224)")
    group.add_argument("--fit", choices=FITS, default="short-side", help="how the image meets the input size (default short-side)")
    group.add_argument("--interpolation", choices=INTERPOLATIONS, default="nearest", help="resampling to the input grid")
    group.add_argument("--level-spacing", type=float, default=None, help="z distance between levels in pixels (default: auto)")


def _evidence_options(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("class evidence")
    name = "--method" if required else "--evidence"
    group.add_argument(name, dest="evidence", choices=METHODS, required=required, default=None,
                       help="cam (global-pooling + linear models), gradcam (any model), occlusion, "
                            "layercam (every level, as the volume array layercam)")
    group.add_argument("--target", default=None, help="class label or index to explain, and to rank channels by with --rank-by effect/ablation "
                            "(default: the top-1 class)")
    group.add_argument("--evidence-layer", default=None, help="Grad-CAM layer (default: the last spatial block)")
    group.add_argument("--patch", type=int, default=32, help="occlusion patch side in pixels (default 32)")
    group.add_argument("--stride", type=int, default=16, help="occlusion stride in pixels (default 16)")
    group.add_argument("--occluder", choices=OCCLUDERS, default="mean", help="what hides a patch (default mean colour)")


def _trust_options(parser: argparse.ArgumentParser) -> None:
    from .faithfulness import BASELINES

    group = parser.add_argument_group("how far to trust the map")
    group.add_argument("--score", action="store_true",
                       help="deletion and insertion scores (RISE) of the map beside a random map and a centred prior, "
                            "and their curves as a PNG")
    group.add_argument("--curves", metavar="PNG", default=None,
                       help="where --score draws the curves (default: PICTURE's name + _scores.png, beside it)")
    group.add_argument("--baseline", choices=BASELINES, default="blur",
                       help="what replaces removed pixels for --score (default blur)")
    group.add_argument("--steps", type=int, default=50, help="steps per --score curve (default 50)")
    group.add_argument("--sanity", action="store_true",
                       help="model-randomisation check: does the map change when the weights are random?")


def _evidence_settings(args: argparse.Namespace):
    if not getattr(args, "evidence", None):
        return None
    return EvidenceSettings(args.evidence, args.target, args.evidence_layer, args.patch, args.stride, args.occluder)


def _sample_image() -> Path:
    return Path(__file__).resolve().parent.parent / "sample_images" / "cat.jpg"


def _collect_images(sources: Sequence[str]) -> list[Path]:
    """The image files to export: files as given, folders by their image-named entries.

    Only names are looked at here; each file is judged when it is read (a FIFO, a device or a
    bad picture among good ones is reported on its own and the others are still exported).
    """
    images: list[Path] = []
    for source in sources:
        path = Path(source)
        try:
            is_folder = stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            raise ImageError(f"image not found: {path}") from None
        except OSError as exc:
            raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not is_folder:
            images.append(path)  # load_image reports a bad file clearly
            continue
        try:
            found = sorted(p for p in path.iterdir() if p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
        except OSError as exc:
            raise ImageError(f"cannot list the folder {path}: {exc.strerror or exc}") from None
        if not found:
            raise ImageError(f"no images in folder {path} (looked for {', '.join(IMAGE_EXTENSIONS)})")
        images += found
    return images


def _targets(images: list[Path], output: str) -> list[Path]:
    out = Path(output)
    if out.suffix == ".nc":
        if len(images) > 1:
            raise OutputError(f"{len(images)} images cannot go into one file {out}: give a folder as -o")
        check_writable(out)
        return [out]
    if out.exists() and not out.is_dir():
        kind = describe_file_type(os.stat(out).st_mode)
        raise OutputError(f"output {out} is {kind}, not a folder: give a folder, or a file name ending in .nc")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {os_error_advice(exc)}") from None
    targets = [out / f"{image.stem}.nc" for image in images]
    seen: dict[Path, Path] = {}
    for image, target in zip(images, targets):
        if target in seen:
            raise OutputError(f"{image} and {seen[target]} would both be written to {target}: rename one")
        seen[target] = image
    check_writable(targets[0])
    return targets


def _export(args: argparse.Namespace) -> int:
    images = _collect_images(args.images)
    targets = _targets(images, args.output)
    return _export_all(_load(args), images, targets, args)


def _load(args: argparse.Namespace):
    """The model the options ask for; with neither --model nor --weights, the default model or,
    offline, the trained offline model (said once on stderr, and recorded in every volume)."""
    if args.model is None and args.weights is None:
        model = load_default_model(device=args.device)
        if model.substitution:
            print(f"cnnvis: note: {model.substitution}", file=sys.stderr)
        return model
    return load_model(args.model or DEFAULT_MODEL, weights=args.weights, device=args.device,
                      trust_torchscript=args.trust_torchscript)


def _compute(model, image: Path, args: argparse.Namespace):
    """compute_volume with the volume and evidence options of the command line."""
    from .compute import compute_volume

    return compute_volume(
        model, image, layers=args.layers, top_k=args.top_k, rank_by=args.rank_by, input_size=args.input_size,
        fit=args.fit, interpolation=args.interpolation, level_spacing=args.level_spacing,
        evidence=_evidence_settings(args), target=args.target,
    )


def _export_all(model, images: list[Path], targets: list[Path], args: argparse.Namespace) -> int:
    failures = 0
    bar = _progress(len(images))
    for image, target in zip(images, targets):
        try:
            check_writable(target)  # before computing: the folder may have gone, the disk be read-only
            volume = _compute(model, image, args).normalized(args.normalization)
            volume.to_netcdf(target)
        except CnnEngineError as exc:
            if len(images) == 1:
                raise
            failures += 1
            _write_line(bar, f"cnnvis: error: {exc}")
        else:
            if len(images) == 1:
                _print_summary(volume, target)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if len(images) > 1:
        print(f"wrote {len(images) - failures} of {len(images)} volumes to {targets[0].parent}")
    return EXIT_USAGE if failures else 0


def _progress(total: int):
    if total < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=sys.stderr, dynamic_ncols=True)


def _write_line(bar, text: str) -> None:
    if bar is not None:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _print_summary(volume, target: Path) -> None:
    prov = volume.provenance
    trained = {True: "", False: "  [UNTRAINED: random weights]"}.get(prov.trained, "  [training unknown]")
    if prov.labels != "ImageNet":
        trained += f"  [labels: {prov.labels}]"
    note = f"  [{volume.extra['substitution']}]" if volume.extra.get("substitution") else ""
    print(f"model {prov.model}, weights {prov.weights}{trained}{note}")
    print(f"image {prov.image_path}  ->  input {prov.input_size[1]}x{prov.input_size[0]} px ({prov.preprocessing['fit']})")
    print(f"{len(volume.levels)} levels, top {volume.top_k} channels each by {prov.rank_by}:")
    print(f"  {'#':>3}  {'level':<22} {'type':<18} {'channels x h x w':<18} stride  field  top channels")
    for level in volume.levels:
        shape = "x".join(str(v) for v in level.native_shape)
        channels = ",".join(str(c) for c in level.channels if c >= 0)
        print(f"  {level.index:>3}  {level.name:<22} {level.layer_type:<18} {shape:<18} {_stride(level.stride):>6} "
              f"{_stride(level.receptive_field):>6}  {channels}")
    _print_geometry_notes(level.geometry for level in volume.levels)
    _print_predictions(volume)
    if volume.evidence_info is not None:
        print(f"evidence: {_describe_evidence(volume.evidence_info)}")
    print(f"wrote {target} ({volume.normalization})")


def _print_predictions(volume) -> None:
    print("top-5 predictions:")
    for p in volume.predictions:
        print(f"  {p.rank}. {p.label} (class {p.index}): {p.probability:.3f}")


def _describe_evidence(info) -> str:
    where = f" on {info.layer}" if info.layer else ""
    extra = f", {info.details['images']} occluded images" if info.details.get("images") else ""
    return (f"{info.method}{where} for {info.target_label} (class {info.target_index}, "
            f"probability {info.target_probability:.3f}){extra}")


def _explain(args: argparse.Namespace) -> int:
    from .netcdf import check_writable
    from .overlay import explain_figure, save_picture

    image = Path(args.image)
    if not image.exists():
        raise CnnEngineError(f"image not found: {image}")
    check_writable(args.output)
    if args.nc:
        check_writable(args.nc)
    curves = _curves_path(args)
    model = _load(args)
    volume = _compute(model, image, args)
    path = save_picture(explain_figure(volume).rgb, args.output)
    _print_predictions(volume)
    print(f"evidence: {_describe_evidence(volume.evidence_info)}")
    print(f"wrote {path}")
    if args.nc:
        print(f"wrote {volume.normalized(args.normalization).to_netcdf(args.nc)}")
    if curves is not None:
        _score(model, image, volume, curves, args)
    if args.sanity:
        from .sanity import sanity_check

        print("\n".join(sanity_check(model, image, _evidence_settings(args), reference=volume).summary()))
    return 0


def _curves_path(args: argparse.Namespace) -> Path | None:
    """Where --score draws its curves (checked before any computing), or None without --score."""
    from .faithfulness_plot import check_curves_path

    if args.curves and not args.score:
        raise CnnEngineError("--curves is where --score draws its curves: add --score, or leave --curves out")
    if not args.score:
        return None
    if args.steps < 1:
        raise CnnEngineError(f"--steps must be at least 1, not {args.steps}")
    output = Path(args.output)
    return check_curves_path(args.curves or output.with_name(f"{output.stem}_scores.png"))


def _score(model, image: Path, volume, curves: Path, args: argparse.Namespace) -> None:
    """Print the faithfulness scores of the volume's evidence map and draw their curves."""
    from tqdm import tqdm

    from .faithfulness import faithfulness
    from .faithfulness_plot import save_curves
    from .overlay import _METHOD_NAMES

    with tqdm(unit="image", desc="scoring", file=sys.stderr, dynamic_ncols=True, leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = faithfulness(model, image, volume, baseline=args.baseline, steps=args.steps, progress=progress,
                              input_size=args.input_size, fit=args.fit)
    print("\n".join(result.summary()))
    method = volume.evidence_info.method
    print(f"wrote {save_curves(result, curves, name=_METHOD_NAMES.get(method, method))}")


def _print_geometry_notes(notes) -> None:
    """Say once where a level's cells could not be placed from the graph (see cnn_engine.receptive)."""
    for note in dict.fromkeys(n for n in notes if n != "exact"):
        print(f"note: geometry {note}")


def _stride(stride: tuple[float, float]) -> str:
    sy, sx = stride
    text = f"{sy:g}" if sy == sx else f"{sy:.3g}/{sx:.3g}"
    return text


def _demo(args: argparse.Namespace) -> int:
    images = [Path(args.image)]
    targets = _targets(images, args.output)
    settings = argparse.Namespace(
        model=None, weights=None, device=args.device, layers="blocks", top_k=4, rank_by="mean", input_size=224,
        fit="short-side", interpolation="nearest", level_spacing=None, normalization="per-level-minmax", evidence=None,
        target=None,
    )
    return _export_all(_load(settings), images, targets, settings)


def _layers(args: argparse.Namespace) -> int:
    model = load_model(args.model, weights="random", device="cpu")
    levels = model.levels(args.layers)
    preprocessing = Preprocessing(fit=args.fit, size=args.input_size)
    if args.image:
        # The grid export gives this image (as cnn_engine.session does, from the header only).
        width, height = input_grid(args.image, preprocessing)
        grid = f"{width}x{height} px (width x height), the input grid of {args.image} ({args.fit}, input size {args.input_size})"
    else:
        width = height = args.input_size
        grid = f"{width}x{height} px, for a square input (--image IMAGE shows the grid of an image)"
    shapes = probe_shapes(model.module, [level.node for level in levels], (height, width))
    geometry = model.geometry((height, width))
    print(f"{model.name}, layer set {args.layers!r}: {len(levels)} levels at {grid}")
    print("stride: input pixels between cells; field: receptive field side; centre: of cell (0, 0), in input pixels")
    print(f"{'#':>4}  {'name':<28} {'type':<22} {'channels x h x w':<18} stride  field  centre")
    notes = []
    for index, level in enumerate(levels):
        _, channels, h, w = shapes[level.node]
        cells = level_geometry(geometry, level.node, (h, w), (height, width))
        notes.append(cells.note)
        print(f"{index:>4}  {level.name:<28} {level.layer_type:<22} {f'{channels}x{h}x{w}':<18} "
              f"{_stride(cells.stride):>6} {_stride(cells.receptive_field):>6}  {_stride(cells.offset)}")
    _print_geometry_notes(notes)
    return 0


def _paraview(args: argparse.Namespace) -> int:
    import os

    from .paraview_launch import launch

    root = Path(__file__).resolve().parent.parent
    plugin = root / "plugin"
    if not (plugin / "cnn_activations.py").is_file():
        raise CnnEngineError(f"the ParaView plugin is not in {plugin}: run cnnvis from the project's own set-up")
    env = dict(os.environ)
    if args.state and args.image:
        raise CnnEngineError("give an image or --state, not both")
    if args.state:
        state = Path(args.state).resolve()
        if not state.is_file():
            raise CnnEngineError(f"state file not found: {args.state}")
        env["CNNVIS_STATE"] = str(state)
    elif args.image:
        image = Path(args.image).resolve()
        if not image.is_file():
            raise CnnEngineError(f"image not found: {args.image}")
        env.update(CNNVIS_IMAGE=str(image), CNNVIS_MODEL=args.model, CNNVIS_WEIGHTS=args.weights)
    script = plugin / "cnn_paraview" / "gui_start.py" if args.state or args.image else None
    # The example states name their images relative to the project folder.
    return launch(plugin, script, env, cwd=root, extra_arguments=["--dr"] if args.no_settings else [])


def _models(args: argparse.Namespace) -> int:
    from .models import VOLUME_MARKS, volume_support

    print("# model, volume: " + "; ".join(f"{mark} = {meaning}" for mark, meaning in VOLUME_MARKS.items()))
    for name in available_models():
        mark, reason = volume_support(name)
        note = "  (default)" if name == DEFAULT_MODEL else "  (trained weights available offline)" if name == OFFLINE_MODEL else ""
        print(f"{name:<20} {mark:<8}{note}{f'  {reason}' if reason else ''}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
