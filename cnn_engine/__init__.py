"""cnn_engine: a CNN's layer outputs on one image as a volume (X, Y across the image, Z down the network).

The public API, stable for scripts and notebooks::

    import cnn_engine
    model = cnn_engine.load_model("resnet50", weights="IMAGENET1K_V1")   # never swaps a model
    model = cnn_engine.load_default_model()   # resnet50, or offline the trained efficientnet_lite0
    vol = cnn_engine.compute_volume(model, "cat.jpg", layers="blocks", top_k=4)
    vol.arrays["rank0"]          # (levels, height, width) float32, row 0 = top of the image
    vol.levels[3].name           # 'layer1.0'
    vol.predictions[0].label     # the top-1 class
    vol.to_netcdf("cat.nc")      # CF netCDF that ParaView's stock reader opens
    vol.to_vtk()                 # vtkImageData, upright in ParaView
    vol = cnn_engine.compute_volume(model, "cat.jpg", evidence="gradcam", target="tabby")
    cnn_engine.faithfulness(model, "cat.jpg", vol.evidence, target="tabby").insertion   # RISE scores
    cnn_engine.sanity_check(model, "cat.jpg", "gradcam").passed   # model randomisation check
    images = cnn_engine.ImageSet("photos/")   # folder, list file, pattern or paths: .paths, .labels, .names
    for vol in cnn_engine.compute_volumes(model, "photos/", channels="set", normalization="set"):
        vol.provenance.true_label     # one volume per image of a set, comparable across the set
    stats = cnn_engine.channel_statistics(model, "labelled_folders/")   # which channel prefers which class
    stats.rows()[0].selectivity; stats.exemplars("layer4.2", 12)[0].box   # exemplar's receptive field
    sw = cnn_engine.sweep(model, "cat.jpg", "blur", [0, 1, 2, 4, 8])   # how blur moves the decision
    sw.steps[2].clean_probability, sw.steps[2].drift, sw.flip_severity, sw.volume(2)

ParaView is never imported by the engine; VTK only by ``to_vtk``. Names are loaded on first use,
so ``import cnn_engine.options`` (the option descriptions the plugin reads) does not import torch.
"""

__version__ = "0.1.0"

import importlib
import sys
import types

# Public name -> the module that holds it (loaded on first use: PEP 562).
_EXPORTS = {
    "ActivationVolume": "volume", "LevelInfo": "volume", "Prediction": "volume", "Provenance": "volume",
    "CnnEngineError": "errors", "FormatError": "errors", "ImageError": "errors", "LayerError": "errors",
    "ModelError": "errors", "OutputError": "errors", "WeightsError": "errors", "WeightsUnavailableError": "errors",
    "CnnModel": "models", "available_models": "models", "load_default_model": "models", "load_model": "models",
    "EvidenceError": "evidence", "EvidenceInfo": "evidence", "EvidenceSettings": "evidence",
    "compute_volume": "compute",
    "compute_volumes": "sets", "scan_set": "sets", "SetScan": "sets", "parse_channel_list": "sets",
    "ImageSet": "imageset",
    "SetSummary": "summary",
    "ChannelStatistics": "statistics", "channel_statistics": "statistics",
    "read_channel_statistics": "statistics",
    "Sweep": "sweep", "SweepStep": "sweep", "sweep": "sweep", "read_sweep_table": "sweep_files",
    "probe_channels": "probes", "ProbeResults": "probes", "read_channel_probes": "probes",
    "Faithfulness": "faithfulness", "FaithfulnessError": "faithfulness", "faithfulness": "faithfulness",
    "SanityCheck": "sanity", "sanity_check": "sanity",
    "NORMALIZATIONS": "normalize", "normalize": "normalize",
    "PERTURBATIONS": "perturbations",
    "read_netcdf": "netcdf", "write_netcdf": "netcdf",
    "read_set_netcdf": "set_netcdf", "write_set_netcdf": "set_netcdf",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnn_engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Keeps a public function named like its module (``faithfulness``, ``normalize``) the
    package attribute once that module is imported (the import system would set the module)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
