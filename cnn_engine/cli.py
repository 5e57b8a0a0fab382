"""The ``cnnvis`` command line: export volumes, list layers and models, run the demo, study channels."""

from __future__ import annotations

import argparse
import os
import queue
import re
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .atomic import describe_file_type, os_error_advice
from .errors import CnnEngineError, FormatError, ImageError, OutputError
from .evidence import EvidenceSettings
from .compute import level_geometry
from .layers import probe_shapes
from .models import available_models, load_default_model, load_model
from .netcdf import DEFAULT_NETCDF_FORMAT, NETCDF_FORMATS, check_writable, write_netcdf
from .options import DEFAULT_MODEL, NORMALIZATIONS, OFFLINE_MODEL, OPTIONS, default, help_text
from .preprocess import Preprocessing, input_grid
from .runner import MAX_AUTO_BATCH, read_ahead
from .statistics import DEFAULT_TOP_N

EXIT_USAGE = 2
#: Volumes waiting for the writer thread: one automatic batch, so that the network goes on with
#: the next batch while the files of this one are written (with a queue of 2 it waited for all
#: but two of a batch's files: 1.8 s of 10.5 s for 64 images). Memory holds at most this many
#: finished volumes besides the batch (one volume of ResNet-50's blocks at 224 px, top 4, is about
#: 15 MB).
WRITE_QUEUE = MAX_AUTO_BATCH
#: Characters that make a source a glob pattern (as cnn_engine.imageset reads it).
_PATTERN = re.compile(r"[*?\[]")
#: cnnvis sweep: severities of a --from/--to range without --steps, and the rankings a sweep takes
#: (of the clean picture's activations; no class ranking).
SWEEP_STEPS = 9
SWEEP_RANKINGS = ("mean", "max", "l2")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    warnings.showwarning = lambda message, *rest, **kw: print(f"cnnvis: note: {message}", file=sys.stderr)
    try:
        _check_minimums(args)
        return _run(args)
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


#: The folders this run of a command created, deepest first (see _output_folder and _run).
_NEW_FOLDERS: list[Path] = []


def _run(args: argparse.Namespace) -> int:
    """The command; a run refused or stopped before its first file leaves none of the folders it
    created behind (they are removed while empty)."""
    _NEW_FOLDERS.clear()
    try:
        return args.run(args)
    except BaseException:
        for folder in _NEW_FOLDERS:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
        raise


def _output_folder(out: Path, named: str, advice: str, kind: str) -> Path:
    """Create the output folder ``out`` (and missing parents), refusing a path that is not a
    folder ("{named} is a regular file, not a folder: {advice}") or cannot be created ("cannot
    create {kind} {out}: ..."). The folders created are remembered for :func:`_run`."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{named} is {describe_file_type(os.stat(out).st_mode)}, not a folder: {advice}")
    missing, folder = [], out
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {kind} {out}: {os_error_advice(exc)}") from None
    _NEW_FOLDERS.extend(missing)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnvis",
        description="Look inside a CNN: layer activations of an image as a volume for ParaView.",
    )
    parser.add_argument("--version", action="version", version=f"cnnvis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser("export", help="write one netCDF volume per image of a set, or the set as one file")
    export.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                        help="the image set: image files, folders (recursive; a subfolder named by an ImageNet "
                             "WordNet ID or class name gives its images' true class), list files (.csv/.txt: "
                             "path[,label] a line) or glob patterns ('frames/*.png')")
    export.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="a folder, created if missing, for one <image name>.nc per image; a .nc file for one "
                             "image, or for the whole set with --single-file")
    export.add_argument("--single-file", action="store_true",
                        help="write the whole set into OUT (a .nc file) as one CF netCDF, one image per time step "
                             "(ParaView's NetCDF reader steps through them); --fit defaults to center-crop then, "
                             "since every image needs the same grid")
    export.add_argument("--format", choices=NETCDF_FORMATS, default=DEFAULT_NETCDF_FORMAT,
                        help=f"netCDF file format: netcdf4 (compressed) or netcdf3 (default {DEFAULT_NETCDF_FORMAT})")
    _model_options(export)
    _volume_options(export, set_normalization=True)
    export.set_defaults(fit=None)  # short-side, or center-crop with --single-file (see _export)
    _set_options(export)
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
    _option(demo, "device")
    demo.set_defaults(run=_demo)

    layers = commands.add_parser("layers", help="list the levels of a model's layer set")
    _option(layers, "model", help=f"model name (default {DEFAULT_MODEL})")
    _option(layers, "layers")
    layers.add_argument("--image", default=None,
                        help="show the shapes on the input grid this image gets (default: a square input)")
    _option(layers, "input_size", help=help_text("input_size") + ", as for export")
    _option(layers, "fit", help=help_text("fit") + ", as for export")
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

    study = commands.add_parser(
        "study", help="which channel responds to which class: channel statistics and exemplars over a labelled set")
    study.add_argument("images", nargs="+", metavar="DIR|LIST|PATTERN",
                       help="the labelled image set: a folder with one subfolder per class (named by an ImageNet "
                            "class name or WordNet ID), a list file (.csv/.txt: path,label a line), a glob pattern "
                            "or image files")
    study.add_argument("-o", "--output", required=True, metavar="STUDY.nc",
                       help="the netCDF file to write (dimensions level, channel, class, exemplar)")
    study.add_argument("--csv", metavar="CSV", help="also write one row per level and channel as a CSV table")
    _model_options(study)
    group = study.add_argument_group("statistics")
    _option(group, "layers")
    group.add_argument("--top-n", type=int, default=DEFAULT_TOP_N, metavar="N",
                       help=f"exemplars kept per channel, 1 to 100 (default {DEFAULT_TOP_N})")
    _option(group, "batch_size")
    _option(group, "input_size")
    _option(group, "fit")
    group.add_argument("--show", type=int, default=5, metavar="N",
                       help="most selective channels printed per level (default 5)")
    study.set_defaults(run=_study)

    probe = commands.add_parser(
        "probe", help="which channel responds to which orientation and colour: tuning to synthetic gratings and "
                      "colour fields")
    probe.add_argument("-o", "--output", required=True, metavar="PROBES.nc",
                       help="the netCDF file to write (dimensions level, channel, orientation, frequency, hue, ...)")
    probe.add_argument("--csv", metavar="CSV", help="also write one row per level and channel as a CSV table")
    _model_options(probe)
    group = probe.add_argument_group("probes")
    _option(group, "layers")
    _option(group, "input_size", help="side of the stimuli in pixels (default 224)")
    _option(group, "batch_size")
    group.add_argument("--show", type=int, default=5, metavar="N",
                       help="most orientation- and most hue-selective channels printed per level (default 5)")
    group.add_argument("--plots", metavar="DIR", default=None,
                       help="draw the tuning curves of the printed channels into this folder (created if missing), "
                            "one PNG per channel: LEVEL_chC.png")
    probe.set_defaults(run=_probe)

    atlas = commands.add_parser("atlas", help="draw a level's exemplar atlas (each channel's top exemplar crops) "
                                              "from a cnnvis study file")
    atlas.add_argument("study", metavar="STUDY.nc", help="a file cnnvis study wrote")
    atlas.add_argument("--level", required=True, help="the level: its name or index, as cnnvis study prints them")
    atlas.add_argument("-o", "--output", required=True, metavar="ATLAS.png", help="the PNG picture to write")
    atlas.add_argument("--channels", metavar="C,C,C",
                       help="channel indices to show, in order (default: the level's 16 most selective)")
    atlas.add_argument("--tile", type=int, default=64, help="side of one exemplar tile in pixels, 8 to 512 "
                                                            "(default 64)")
    atlas.add_argument("--columns", type=int, default=None,
                       help="channels per row of the grid (default: about as many rows as columns)")
    atlas.set_defaults(run=_atlas)

    _sweep_parser(commands)
    return parser


def _sweep_parser(commands) -> None:
    """``cnnvis sweep``: its options, the model and volume ones built as export's are."""
    from .perturbations import PERTURBATIONS
    from .sweep_plot import unit_text

    sweep = commands.add_parser(
        "sweep", help="how an image property changes the decision: perturb one image step by step (blur, noise, "
                      "...) and write the volumes, the table and a figure")
    sweep.add_argument("image", metavar="IMAGE", help="the image")
    sweep.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="a folder, created if missing, for <image name>_<perturbation>.nc and .csv per "
                            "perturbation, and the figure <image name>_<perturbation>.png (several perturbations: "
                            "one figure comparing them, <image name>_sweep.png)")
    sweep.add_argument("--format", choices=NETCDF_FORMATS, default=DEFAULT_NETCDF_FORMAT,
                       help=f"netCDF file format: netcdf4 (compressed) or netcdf3 (default {DEFAULT_NETCDF_FORMAT})")
    group = sweep.add_argument_group("sweep")
    group.add_argument("--perturbation", action="append", required=True, metavar="NAME[,NAME]",
                       help="what changes, with its severity: " + ", ".join(
                           f"{p.name} ({p.parameter}, {unit_text(p.unit)})" for p in PERTURBATIONS.values())
                       + "; repeat the option or give a comma list to sweep several, each over its own default "
                         "range where --from/--to are not given")
    group.add_argument("--from", dest="start", type=float, default=None, metavar="SEVERITY",
                       help="first severity (default: the lowest of the perturbation's default sweep)")
    group.add_argument("--to", dest="stop", type=float, default=None, metavar="SEVERITY",
                       help="last severity (default: the highest of the perturbation's default sweep)")
    group.add_argument("--steps", type=int, default=None, metavar="N",
                       help=f"severities from --from to --to, evenly spaced, both ends included, at least 2 "
                            f"(default {SWEEP_STEPS}; with none of --from, --to, --steps: the perturbation's "
                            "documented default sweep, which includes the clean image)")
    group.add_argument("--values", default=None, metavar="V,V,V",
                       help="the severities themselves instead of a range, e.g. 0,1,2,4 (negative numbers: "
                            "--values=-45,0,45)")
    _option(group, "target", help="class label or index whose probability every step records besides the clean "
                                   "picture's top-1 class")
    group.add_argument("--position", default=None, metavar="X,Y",
                       help="occlusion: centre of the patch in input pixels (default: the picture centre)")
    _option(group, "occluder", default=None,
            help="occlusion: what hides the patch: its mean colour, a blur or noise (default mean)")
    group.add_argument("--seed", type=int, default=0, help="seed of the noise and of the noise occluder (default 0)")
    _model_options(sweep)
    group = sweep.add_argument_group("volume")
    _option(group, "layers")
    _option(group, "top_k")
    _option(group, "rank_by", choices=SWEEP_RANKINGS,
            help="channel ranking on the clean picture, kept for every step: mean, max or l2 activation (default mean)")
    for name in ("input_size", "fit", "interpolation", "batch_size"):
        _option(group, name)
    sweep.set_defaults(run=_sweep)


def _option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *, flag: str | None = None,
            **overrides: Any) -> None:
    """Add option ``name`` as cnn_engine.options describes it: flag (``top_k`` -> ``--top-k``),
    choices, default, type, metavar and help (with its default); ``overrides`` replace any of them."""
    option = OPTIONS[name]
    settings: dict[str, Any] = {"dest": name, "default": option.default, "help": _flags(help_text(name))}
    if option.choices is not None:
        settings["choices"] = option.choices
    if option.kind is not str:
        settings["type"] = option.kind
    if option.metavar:
        settings["metavar"] = option.metavar
    settings.update(overrides)
    parser.add_argument(flag or option.flag, **settings)


def _flags(text: str) -> str:
    """A help text of cnn_engine.options as the command line spells it: ``rank_by`` -> ``--rank-by``."""
    return re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: OPTIONS[m[0]].flag if m[0] in OPTIONS else m[0], text)


def _check_minimums(args: argparse.Namespace) -> None:
    """Numbers below an option's minimum (cnn_engine.options) are refused before anything runs."""
    for name, option in OPTIONS.items():
        value = getattr(args, name, None)
        if option.minimum is not None and isinstance(value, (int, float)) and value < option.minimum:
            raise CnnEngineError(f"{option.flag} must be at least {option.minimum:g}, not {value:g}")


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    # None: the default model, or offline its trained stand-in, said once (see _load); the help
    # says so, with the default.
    _option(group, "model", default=None, help=OPTIONS["model"].help)
    _option(group, "weights")
    group.add_argument("--trust-torchscript", action="store_true",
                       help="load a TorchScript weights file, which runs code stored in it: only for files from a "
                            "source you trust (refused without this)")
    _option(group, "device")


def _volume_options(parser: argparse.ArgumentParser, set_normalization: bool = False) -> None:
    """The options of a volume; ``set_normalization``: offer normalisation ``set`` (a set's ranges)."""
    group = parser.add_argument_group("volume")
    for name in ("layers", "top_k", "rank_by"):
        _option(group, name)
    if set_normalization:
        _option(group, "normalization")
    else:  # one image: the scalings of one volume
        _option(group, "normalization", choices=NORMALIZATIONS)
    for name in ("input_size", "fit", "interpolation", "level_spacing"):
        _option(group, name)


def _set_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image set")
    _option(group, "channels")
    _option(group, "channel_list", help=OPTIONS["channel_list"].help.replace("channels explicit", "--channels explicit"))
    _option(group, "batch_size")


def _evidence_options(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("class evidence")
    if required:
        _option(group, "evidence", flag="--method", required=True, help=OPTIONS["evidence"].help)
    else:
        _option(group, "evidence", flag="--evidence")
    for name in ("target", "evidence_layer", "patch", "stride", "occluder"):
        _option(group, name)


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


def _image_set(sources: Sequence[str]):
    """The image set the positional arguments name (see cnn_engine.ImageSet): one source as it
    is (a folder, a list file, a glob pattern or an image file), several as a list.

    A path that does not exist (and is no pattern) is refused here, before the model is loaded;
    files inside the set are judged when they are read (a bad one is reported, the set goes on).
    """
    from .imageset import ImageSet

    for source in sources:
        try:
            os.lstat(os.path.expanduser(source))
        except FileNotFoundError:
            if not _PATTERN.search(source):
                raise ImageError(f"image not found: {source}") from None
        except OSError as exc:
            raise ImageError(f"cannot read {source}: {exc.strerror or exc}") from None
    return ImageSet(sources[0] if len(sources) == 1 else list(sources))


def _targets(images, output: str, single_file: bool) -> list[Path]:
    """Where the volumes go, checked before anything is computed: one .nc file (one image, or
    the set with --single-file), or one <name>.nc per image (ImageSet.names: unique) in a folder."""
    out = Path(output)
    if single_file and out.suffix != ".nc":
        raise OutputError(f"--single-file writes the whole set into one netCDF file: give -o a file name ending "
                          f"in .nc, not {out}")
    if out.suffix == ".nc":
        if len(images) > 1 and not single_file:
            raise OutputError(f"{len(images)} images cannot go into one file {out}: give a folder as -o, or add "
                              "--single-file")
        check_writable(out)
        return [out]
    _output_folder(out, f"output {out}", "give a folder, or a file name ending in .nc", "output folder")
    targets = [out / f"{name}.nc" for name in images.names]
    check_writable(targets[0])
    return targets


def _export(args: argparse.Namespace) -> int:
    channels = _channel_choice(args)
    if args.fit is None:  # every time step of a single file needs the same grid
        args.fit = "center-crop" if args.single_file else default("fit")
    images = _image_set(args.images)
    targets = _targets(images, args.output, args.single_file)
    model = _load(args)
    if model.categories:  # labels as class indices of the model's own classes
        from .imageset import ImageSet

        images = ImageSet(images, categories=model.categories)
    if args.single_file:
        return _export_set_file(model, images, targets[0], channels, args)
    if len(images) == 1:
        return _export_one(model, images, targets[0], channels, args)
    return _export_files(model, images, targets, channels, args)


def _channel_choice(args: argparse.Namespace):
    """--channels as compute_volumes takes it: per-image, set, or the channels of --channel-list."""
    from .sets import parse_channel_list

    if args.channels == "explicit":
        if not args.channel_list:
            raise CnnEngineError("--channels explicit needs the channels: add --channel-list LEVEL:C,C;LEVEL:C, e.g. "
                                 "--channel-list 'layer4.2:12,40;layer3.5:7' (level names as cnnvis layers lists them)")
        return parse_channel_list(args.channel_list)
    if args.channel_list:
        raise CnnEngineError(f"--channel-list gives the channels of --channels explicit, not of --channels "
                             f"{args.channels}: add --channels explicit")
    return args.channels


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


def _volume_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The volume and evidence options of the command line, as compute_volume(s) takes them."""
    return dict(layers=args.layers, top_k=args.top_k, rank_by=args.rank_by, input_size=args.input_size, fit=args.fit,
                interpolation=args.interpolation, level_spacing=args.level_spacing,
                evidence=_evidence_settings(args), target=args.target)


def _compute(model, image: Path, args: argparse.Namespace):
    """compute_volume with the volume and evidence options of the command line."""
    from .compute import compute_volume

    return compute_volume(model, image, **_volume_settings(args))


def _volumes(model, images, channels, args: argparse.Namespace, on_error, progress):
    """The set's volumes, in set order, from one compute_volumes call (it batches, and runs the
    first pass that set-wide channels or normalisation need)."""
    from .sets import compute_volumes

    return compute_volumes(model, images, channels=channels, normalization=args.normalization,
                           batch_size=args.batch_size, progress=progress, on_error=on_error, **_volume_settings(args))


def _two_passes(channels, args: argparse.Namespace) -> bool:
    return channels == "set" or args.normalization == "set"


def _raise(path: str, error: CnnEngineError) -> None:
    """on_error for a single image: its error is the command's."""
    raise error


def _export_one(model, images, target: Path, channels, args: argparse.Namespace) -> int:
    """One image: computed, written and described (levels, predictions)."""
    (volume,) = list(_volumes(model, images, channels, args, _raise, None))
    write_netcdf(volume, target, format=args.format)
    _print_summary(volume, target)
    return 0


def _export_files(model, images, targets: list[Path], channels, args: argparse.Namespace) -> int:
    """One file per image of a set, written on a background thread while the next batch is computed."""
    from .summary import SetSummary

    progress = _SetProgress(len(images), _two_passes(channels, args))
    failed: list[str] = []

    def on_error(path: str, error: CnnEngineError) -> None:
        failed.append(Path(path).name)
        progress.write(f"cnnvis: error: {error}")

    summary = SetSummary()
    writer = _BackgroundWriter(args.format, progress.write)
    try:
        try:
            for volume in _volumes(model, images, channels, args, on_error, progress):
                summary.add(volume)
                writer.put(volume, targets[volume.provenance.set_index])
        except BaseException:
            writer.close(cancel=True)
            raise
        writer.close()
    finally:
        progress.close()
    if not summary.count:
        raise ImageError(f"none of the {len(images)} images could be read: nothing was written")
    failed += [target.name for target in writer.failed]
    print(f"wrote {len(writer.written)} of {len(images)} volumes to {targets[0].parent}")
    _print_set_end(failed, summary)
    return EXIT_USAGE if failed else 0


def _export_set_file(model, images, target: Path, channels, args: argparse.Namespace) -> int:
    """The whole set as one netCDF file, one image per time step, streamed (one volume in memory)."""
    from .set_netcdf import write_set_netcdf
    from .summary import SetSummary

    progress = _SetProgress(len(images), _two_passes(channels, args))
    failed: list[str] = []

    def on_error(path: str, error: CnnEngineError) -> None:
        if len(images) == 1:
            raise error
        failed.append(Path(path).name)
        progress.write(f"cnnvis: error: {error}")

    summary = SetSummary()

    def counted():
        # Computed on a worker thread while this one writes the file (HDF5 wants one thread).
        for volume in read_ahead(_volumes(model, images, channels, args, on_error, progress), WRITE_QUEUE):
            summary.add(volume)
            yield volume

    try:
        write_set_netcdf(counted(), target, format=args.format, count=len(images))
    except FormatError:
        if not summary.count and failed:
            raise ImageError(f"none of the {len(images)} images could be read: nothing was written") from None
        raise
    finally:
        progress.close()
    print(f"wrote {summary.count} of {len(images)} volumes to {target}, one time step each ({args.format})")
    _print_set_end(failed, summary)
    return EXIT_USAGE if failed else 0


def _print_set_end(failed: list[str], summary) -> None:
    """The images that failed, by name, and what the set says about the classifier."""
    if failed:
        print(f"failed {len(failed)}: {', '.join(failed)}")
    print("\n".join(summary.lines()))


class _SetProgress:
    """One progress bar (stderr) over compute_volumes' passes: "scanning" while the first pass of
    set-wide channels or normalisation runs, then "computing"; no bar for a single image."""

    def __init__(self, count: int, two_passes: bool) -> None:
        self.count = count
        self.scanning = two_passes
        self.bar = None

    def _start(self) -> None:
        # On the first report, not before: a run the engine refuses at its start shows no bar.
        if self.bar is None and self.count > 1:
            from tqdm import tqdm

            self.bar = tqdm(total=self.count * (2 if self.scanning else 1),
                            desc="scanning" if self.scanning else "computing", unit="image", file=sys.stderr,
                            dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        self._start()
        if self.bar is None:
            return
        # The first pass counts the set's images (done <= count), the second counts on from there.
        if self.scanning and done > self.count:
            self.scanning = False
            self.bar.set_description("computing", refresh=False)
        if not self.scanning:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def write(self, text: str) -> None:
        """A line above the bar (from any thread: tqdm serialises them)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _BackgroundWriter:
    """Writes volumes to their files on a thread of its own while the network computes the next batch.

    At most :data:`WRITE_QUEUE` volumes wait: :meth:`put` blocks beyond that, so memory stays
    bounded whatever the size of the set. A file that cannot be written (a full disk, a vanished
    folder) is reported on one line and the next one is tried, as for a bad image; every file is
    written atomically, so none is ever half-written. :meth:`close` waits for the queued files;
    ``close(cancel=True)`` (an error, Ctrl-C) drops them and waits only for the one being written.
    """

    def __init__(self, format: str, report: Callable[[str], None]) -> None:
        self.written: list[Path] = []
        self.failed: list[Path] = []
        self._format = format
        self._report = report
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE)
        self._cancelled = threading.Event()
        self._bug: BaseException | None = None
        # A daemon: an interrupted run must not be held open by files nobody waits for.
        self._thread = threading.Thread(target=self._run, name="cnnvis-write", daemon=True)
        self._thread.start()

    def put(self, volume, target: Path) -> None:
        """Queue ``volume`` to be written to ``target``."""
        if self._bug is not None:
            raise self._bug
        self._queue.put((volume, target))

    def close(self, cancel: bool = False) -> None:
        """Wait for the writes (``cancel``: only the current one); a bug in writing is raised here."""
        if cancel:
            self._cancelled.set()
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
        self._queue.put(None)
        self._thread.join()
        if self._bug is not None and not cancel:
            raise self._bug

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if not (self._cancelled.is_set() or self._bug is not None):
                self._write(*job)
            job = None  # the volume's memory goes now, not when the next one comes

    def _write(self, volume, target: Path) -> None:
        try:
            write_netcdf(volume, target, format=self._format)
        except CnnEngineError as exc:
            self.failed.append(target)
            self._report(f"cnnvis: error: {exc}")
        except BaseException as exc:  # a bug: no more writing; the main thread raises it
            self._bug = exc
        else:
            self.written.append(target)


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
    # `cnnvis export IMAGE -o OUT` with every other option at its default.
    return _export(_parser().parse_args(["export", "-o", args.output, "--device", args.device, "--", args.image]))


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


def _study(args: argparse.Namespace) -> int:
    """Channel statistics of a labelled set: one progress bar, the file (and CSV), then per level
    the most selective channels and the notes on the set."""
    from .statistics import channel_statistics

    if args.show < 1:
        raise CnnEngineError(f"--show must be at least 1, not {args.show}")
    if not 1 <= args.top_n <= 100:
        raise CnnEngineError(f"--top-n must be from 1 to 100, not {args.top_n}")
    _check_table_path(args.output, "netCDF file", ".nc", "study")
    if args.csv:
        _check_table_path(args.csv, "CSV file", ".csv", "study")
    images = _image_set(args.images)
    model = _load(args)
    if model.categories:  # labels as class indices of the model's own classes
        from .imageset import ImageSet

        images = ImageSet(images, categories=model.categories)
    _check_labels(images, model)
    progress = _SetProgress(len(images), False)
    failed: list[str] = []

    def on_error(path: str, error: CnnEngineError) -> None:
        failed.append(Path(path).name)
        progress.write(f"cnnvis: error: {error}")

    # The statistics' notes come once the bar is gone, as lines of their own.
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        try:
            stats = channel_statistics(model, images, layers=args.layers, top_n=args.top_n, batch_size=args.batch_size,
                                       input_size=args.input_size, fit=args.fit, progress=progress, on_error=on_error)
        finally:
            progress.close()
    finish_study(stats, args, notes, failed)
    return EXIT_USAGE if failed else 0


def finish_study(stats: Any, args: argparse.Namespace, notes: list, failed: list[str]) -> None:
    """After the pass (one process, or rank 0 of an MPI run): the notes as lines of their own,
    the files, the most selective channels per level, the images that failed, what was written."""
    for note in dict.fromkeys(str(n.message) for n in notes):
        print(f"cnnvis: note: {note}", file=sys.stderr)
    written = [stats.to_netcdf(args.output)]
    if args.csv:
        written.append(stats.to_csv(args.csv))
    _print_study(stats, args.show)
    if failed:
        print(f"failed {len(failed)}: {', '.join(failed)}")
    for path in written:
        print(f"wrote {path}")


def _check_table_path(path: str, what: str, suffix: str, example: str) -> None:
    """A table output (netCDF, CSV) must end in its suffix and be writable: checked before computing.
    ``example``: a name for the message (``study``, ``probes``)."""
    if Path(path).suffix.lower() != suffix:
        raise OutputError(f"the {what} {path} should end in {suffix}: give a name such as {example}{suffix}")
    check_writable(path, what, suffix)


def _check_labels(images, model) -> None:
    """A set whose every label matches no class of the model is refused (the statistics compare
    classes; the notes above said why each label failed); images without labels are allowed."""
    given = sorted({name for name in images.label_names if name is not None})
    if given and all(label is None for label in images.labels):
        shown = ", ".join(given[:5]) + (f" and {len(given) - 5} more" if len(given) > 5 else "")
        raise ImageError(f"none of the set's labels ({shown}) is a class of {model.name}: name the folders (or the "
                         "list file's labels) by class name, WordNet ID or class index, e.g. tabby, n02123045 or 281")


def _print_study(stats, show: int) -> None:
    """Per level the ``show`` most selective channels as a table, or why there is no ranking."""
    classes = ", ".join(f"{name} ({index}): {count}" for name, index, count
                        in zip(stats.class_names, stats.classes, stats.class_counts))
    print(f"{stats.model_name}, layer set {stats.layers}: {stats.images} images, {len(stats.classes)} classes"
          + (f" ({classes})" if classes else ""))
    if len(stats.classes) < 2:
        reason = ("no image has a label" if not stats.classes else
                  f"the set has one class only ({stats.class_names[0]})")
        print(f"no channel ranking: {reason}, so selectivity and AUROC are undefined; the file holds the means "
              "and the exemplars (cnnvis atlas draws them)")
        return
    print("most selective channels per level: selectivity (mu_best - mu_rest) / (mu_best + mu_rest) of the "
          "preferred class's mean response, AUROC of the preferred class against the rest")
    for index, level in enumerate(stats.levels):
        count = stats.channel_counts[index]
        shown = f"the {show} most selective" if count > show else (
            f"all {count}, fewer than --show {show}" if count < show else f"all {count}")
        print(f"level {index} {level}: {count} channels, {shown}")
        print(f"  {'channel':>7}  {'preferred class':<32} {'selectivity':>11} {'AUROC':>6}")
        for row in stats.most_selective(index, show):
            preferred = f"{row.preferred_class_name} ({row.preferred_class})" if row.preferred_class >= 0 else "-"
            print(f"  {row.channel:>7}  {preferred:<32} {_number(row.selectivity):>11} {_number(row.auroc):>6}")


def _number(value: float) -> str:
    return f"{value:.3f}" if value == value else "n/a"  # NaN: undefined


def _probe(args: argparse.Namespace) -> int:
    """Feature probes: one progress bar, the file (and CSV), per level the most orientation- and
    hue-selective channels with their labels, and with --plots their tuning curves."""
    from .probes import STIMULI, probe_channels

    if args.show < 1:
        raise CnnEngineError(f"--show must be at least 1, not {args.show}")
    _check_table_path(args.output, "netCDF file", ".nc", "probes")
    if args.csv:
        _check_table_path(args.csv, "CSV file", ".csv", "probes")
    plots = _plot_folder(args.plots) if args.plots else None
    model = _load(args)
    progress = _SetProgress(STIMULI, False)
    try:
        probes = probe_channels(model, layers=args.layers, input_size=args.input_size, batch_size=args.batch_size,
                                progress=progress)
    finally:
        progress.close()
    written = [probes.to_netcdf(args.output)]
    if args.csv:
        written.append(probes.to_csv(args.csv))
    print(f"{probes.model_name} ({probes.weights}), layer set {probes.layers}: {STIMULI} stimuli of "
          f"{probes.input_size} px; OSI, HSI: 0 = the same response to every orientation / hue, 1 = to one only")
    drawn = 0
    for index, level in enumerate(probes.levels):
        count = probes.channel_counts[index]
        shown = f"the {args.show} most selective" if count > args.show else (
            f"all {count}, fewer than --show {args.show}" if count < args.show else f"all {count}")
        print(f"level {index} {level}: {count} channels, {shown} by orientation, then by hue")
        plotted: set[int] = set()
        tables = (("orientation", probes.preferred_orientation_deg, probes.osi, "OSI"),
                  ("hue", probes.preferred_hue_deg, probes.hsi, "HSI"))
        for title, preferred, selectivity, unit in tables:
            print(f"  {title + ':':<12} {'channel':>7} {'preferred':>10} {unit:>6}  label")
            for channel in _most(selectivity[index], args.show):
                angle = float(preferred[index][channel])
                where = f"{angle:.1f} deg" if angle == angle else "n/a"
                print(f"  {'':<12} {channel:>7} {where:>10} {_number(float(selectivity[index][channel])):>6}  "
                      f"{probes.label[index][channel]}")
                plotted.add(channel)
        if plots is not None:
            for channel in sorted(plotted):
                probes.plot_tuning(index, channel, plots / f"{_file_name(level)}_ch{channel}.png")
                drawn += 1
    if plots is not None:
        print(f"wrote {drawn} tuning plots to {plots}")
    for path in written:
        print(f"wrote {path}")
    return 0


def _most(values, count: int) -> list[int]:
    """Indices of the ``count`` highest values, highest first (NaN last, ties by index)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    order = np.lexsort((np.arange(len(values)), -np.where(np.isnan(values), -np.inf, values)))
    return [int(i) for i in order[:count]]


def _plot_folder(folder: str) -> Path:
    """--plots: a folder, created if missing, checked before computing."""
    out = _output_folder(Path(folder), f"--plots {Path(folder)}", "give a folder", "the plot folder")
    check_writable(out / "tuning.png", "picture", ".png")
    return out


def _file_name(level: str) -> str:
    """A level name as a safe file-name part (layer names hold dots, rarely slashes)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", level)


def _atlas(args: argparse.Namespace) -> int:
    """A level's exemplar atlas of a study file as a PNG."""
    from .atlas import exemplar_atlas, save_atlas
    from .statistics import read_channel_statistics

    channels = _channel_numbers(args.channels) if args.channels is not None else None
    if args.tile is not None and not 8 <= args.tile <= 512:
        raise CnnEngineError(f"--tile must be from 8 to 512 pixels, not {args.tile}")
    if args.columns is not None and args.columns < 1:
        raise CnnEngineError(f"--columns must be at least 1, not {args.columns}")
    if Path(args.output).suffix.lower() != ".png":
        raise OutputError(f"an atlas is a PNG picture: give -o a name ending in .png, not {args.output}")
    check_writable(args.output, "picture", ".png")
    stats = read_channel_statistics(args.study)
    level = args.level if args.level in stats.levels or not args.level.isdigit() else int(args.level)
    atlas = exemplar_atlas(stats, level, channels=channels, tile=args.tile, columns=args.columns)
    path = save_atlas(atlas, args.output)
    height, width = atlas.rgb.shape[:2]
    print(f"level {stats.level_index(level)} {atlas.level}: channels {', '.join(str(c) for c in atlas.channels)}")
    print(f"wrote {path} ({width}x{height} px: {atlas.rows} x {atlas.columns} channels, {atlas.side} x {atlas.side} "
          f"exemplars of {atlas.tile} px each)")
    return 0


def _channel_numbers(text: str) -> list[int]:
    """--channels 3,7,12 as channel indices."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise CnnEngineError(f"--channels takes channel indices separated by commas, such as 3,7,12, not {text!r}")
    return [int(part) for part in parts]


def _sweep(args: argparse.Namespace) -> int:
    """Perturbation sweeps of one image: everything the user gives is checked (perturbations,
    severities, image, outputs) before the model loads; then one progress bar over every picture,
    each perturbation's netCDF and CSV written as soon as it is done, the figure, and per
    perturbation the flip and half severities and a table of the steps."""
    from .evidence import resolve_target
    from .images import load_image
    from .sweep import sweep
    from .sweep_plot import sweep_figure

    plans = _sweep_plans(args)
    load_image(args.image)  # an image that cannot be read fails here, before anything is written
    targets = _sweep_targets(args.image, args.output, [name for name, _, _ in plans])
    model = _load(args)
    if args.target is not None and model.categories:  # the engine would resolve it only after the run
        resolve_target(args.target, model.categories, 0)
    # The engine's count: the clean picture, then each step that is not the clean picture.
    counts = [1 + sum(value != chosen.identity for value in values) for _, chosen, values in plans]
    progress = _SetProgress(max(sum(counts), 2), False)  # a bar even for one picture
    done_before = 0
    kept, written = [], []
    try:
        for (name, chosen, values), count in zip(plans, counts):
            def step_progress(done: int, total: int, before: int = done_before, expected: int = count) -> None:
                progress(before + done, sum(counts) - expected + total)

            options = _sweep_options(args) if name == "occlusion" else {}
            result = sweep(model, args.image, name, values, layers=args.layers, top_k=args.top_k, target=args.target,
                           rank_by=args.rank_by, input_size=args.input_size, fit=args.fit,
                           interpolation=args.interpolation, seed=args.seed, batch_size=args.batch_size,
                           progress=step_progress, **options)
            done_before += count
            netcdf, table = targets[name]
            written += [result.to_netcdf(netcdf, format=args.format), result.to_csv(table)]
            # The figure needs the table only: the step volumes and pictures go now, not at the end.
            kept.append(result.table_only())
    finally:
        progress.close()
    written.append(sweep_figure(kept, targets["figure"]))
    for result in kept:
        _print_sweep(result)
    for path in written:
        print(f"wrote {path}")
    return 0


def _sweep_plans(args: argparse.Namespace) -> list[tuple[str, Any, tuple[float, ...]]]:
    """(name, perturbation, severities) for each --perturbation, every one checked: unknown names,
    severities out of range, fewer than two steps and conflicting options are refused here."""
    import numpy as np

    from .perturbations import check_severities, perturbation

    names = list(dict.fromkeys(part.strip() for given in args.perturbation for part in given.split(",")
                               if part.strip()))
    if not names:
        raise CnnEngineError("--perturbation names no perturbation: give one or more names, such as blur or blur,noise")
    ranged = args.start is not None or args.stop is not None or args.steps is not None
    if args.values is not None and ranged:
        raise CnnEngineError("give the severities either as --values or as --from/--to/--steps, not both")
    if args.steps is not None and args.steps < 2:
        raise CnnEngineError(f"--steps must be at least 2, not {args.steps}: a sweep compares severities")
    if (args.position is not None or args.occluder is not None) and "occlusion" not in names:
        flag = "--position" if args.position is not None else "--occluder"
        raise CnnEngineError(f"{flag} places or fills the occlusion patch: add --perturbation occlusion, or leave "
                             f"{flag} out")
    given = _severity_list(args.values) if args.values is not None else None
    plans = []
    for name in names:
        chosen = perturbation(name)
        if given is not None:
            values = given
        elif ranged:
            start = min(chosen.default_values) if args.start is None else args.start
            stop = max(chosen.default_values) if args.stop is None else args.stop
            check_severities(chosen, (start, stop))  # the message names the end given, not a step inside
            # 12 significant digits: 0.3, not 0.30000000000000004, in labels, tables and files.
            values = [float(f"{v:.12g}") for v in np.linspace(start, stop, args.steps or SWEEP_STEPS)]
        else:
            values = chosen.default_values
        values = check_severities(chosen, values)
        if len(set(values)) < 2 and given is None:
            raise CnnEngineError(f"--from and --to are both {values[0]:g}: a sweep needs different severities; set "
                                 f"them apart ({chosen.name} {chosen.parameter}: {chosen.low:g} to {chosen.high:g} "
                                 f"{chosen.unit})")
        if len(set(values)) < 2:
            raise CnnEngineError(f"--values gives one severity ({values[0]:g}): a sweep needs at least two, e.g. "
                                 f"--values {chosen.low:g},{chosen.high:g} ({chosen.name} {chosen.parameter}: "
                                 f"{chosen.low:g} to {chosen.high:g} {chosen.unit})")
        plans.append((name, chosen, values))
    if args.position is not None:
        _sweep_options(args)  # a malformed --position fails now, not after the first sweeps
    return plans


def _severity_list(text: str) -> list[float]:
    """--values 0,1,2,4 as numbers (their ranges are checked per perturbation)."""
    try:
        return [float(part) for part in text.split(",") if part.strip()] or [float(text)]
    except ValueError:
        raise CnnEngineError(f"--values takes numbers separated by commas, such as 0,1,2,4, not {text!r}") from None


def _sweep_options(args: argparse.Namespace) -> dict[str, Any]:
    """The occlusion options given: --position X,Y (input pixels) and --occluder."""
    options: dict[str, Any] = {}
    if args.position is not None:
        try:
            x, y = (float(part) for part in args.position.split(","))
        except ValueError:
            raise CnnEngineError(f"--position takes the patch centre as X,Y in input pixels, such as 112,80, "
                                 f"not {args.position!r}") from None
        options["position"] = (x, y)
    if args.occluder is not None:
        options["occluder"] = args.occluder
    return options


def _sweep_targets(image: str, output: str, names: list[str]) -> dict[str, Any]:
    """The output folder (created if missing) and every file the sweep writes, checked writable
    before computing: {name: (netCDF, CSV)} and "figure"."""
    out = _output_folder(Path(output), f"output {Path(output)}", "give a folder for the sweep's files", "output folder")
    stem = Path(image).stem
    targets: dict[str, Any] = {}
    for name in names:
        targets[name] = (check_writable(out / f"{stem}_{name}.nc"),
                         check_writable(out / f"{stem}_{name}.csv", "CSV file", ".csv"))
    figure = f"{stem}_{names[0]}.png" if len(names) == 1 else f"{stem}_sweep.png"
    targets["figure"] = check_writable(out / figure, "picture", ".png")
    return targets


def _print_sweep(result) -> None:
    """A sweep's summary: what was swept, the flip and half severities, and one line per step."""
    from .sweep_plot import unit_text

    level_first, level_last = result.levels[0], result.levels[-1]
    target = f"; target {result.target_label} ({result.target})" if result.target is not None else ""
    print(f"{result.perturbation} {result.parameter} ({unit_text(result.unit)}): {len(result.steps)} steps; "
          f"clean top-1 {result.clean_label} ({result.clean_class}), p {result.clean_probability:.3f}{target}")
    by_severity = {step.severity: step for step in result.steps}
    if result.flip_severity is None:
        print(f"  flip severity: none (the top-1 class stays {result.clean_label} at every step)")
    else:
        top1 = by_severity[result.flip_severity].top1
        print(f"  flip severity: {result.flip_severity:.6g} (top-1 becomes {top1.label}, p {top1.probability:.3f})")
    half = result.clean_probability / 2
    if result.half_severity is None:
        print(f"  half severity: none ({result.clean_label} stays at or above {half:.3f}, half its clean probability)")
    else:
        below = by_severity[result.half_severity].clean_probability
        print(f"  half severity: {result.half_severity:.6g} ({result.clean_label} p {below:.3f}, below {half:.3f})")
    drift = [f"drift {level_first}"] + ([f"drift {level_last}"] if len(result.levels) > 1 else [])
    header = f"  {'severity':>9}  {'top-1 (p)':<30} {'p clean':>7}" + (f" {'p target':>8}" if target else "")
    print(header + "".join(f" {name:>{max(len(name), 7)}}" for name in drift))
    for step in result.steps:
        top1 = f"{step.top1.label} ({step.top1.probability:.3f})"
        line = f"  {step.severity:>9.6g}  {top1:<30} {step.clean_probability:>7.3f}"
        if target:
            line += f" {step.target_probability:>8.3f}"
        # Rounded first: float32 noise of the same activation (a drift of -1e-7) reads 0.000, not -0.000.
        values = [round(v, 3) + 0.0 for v in [step.drift[0]] + ([step.drift[-1]] if len(result.levels) > 1 else [])]
        line += "".join(f" {_number(value):>{max(len(name), 7)}}" for name, value in zip(drift, values))
        print(line)


if __name__ == "__main__":
    sys.exit(main())
