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

ParaView is never imported by the engine; VTK only by ``to_vtk``.
"""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    CnnEngineError,
    FormatError,
    ImageError,
    LayerError,
    ModelError,
    OutputError,
    WeightsError,
    WeightsUnavailableError,
)
from .models import CnnModel, available_models, load_default_model, load_model  # noqa: E402
from .evidence import EvidenceError, EvidenceInfo, EvidenceSettings  # noqa: E402
from .compute import compute_volume  # noqa: E402
from .faithfulness import Faithfulness, FaithfulnessError, faithfulness  # noqa: E402
from .sanity import SanityCheck, sanity_check  # noqa: E402
from .normalize import NORMALIZATIONS, normalize  # noqa: E402
from .volume import ActivationVolume, LevelInfo, Prediction, Provenance  # noqa: E402
from .netcdf import read_netcdf, write_netcdf  # noqa: E402

__all__ = [
    "ActivationVolume",
    "CnnEngineError",
    "CnnModel",
    "EvidenceError",
    "EvidenceInfo",
    "EvidenceSettings",
    "Faithfulness",
    "FaithfulnessError",
    "FormatError",
    "ImageError",
    "LayerError",
    "LevelInfo",
    "ModelError",
    "NORMALIZATIONS",
    "OutputError",
    "Prediction",
    "Provenance",
    "SanityCheck",
    "WeightsError",
    "WeightsUnavailableError",
    "available_models",
    "compute_volume",
    "faithfulness",
    "load_default_model",
    "load_model",
    "normalize",
    "read_netcdf",
    "sanity_check",
    "write_netcdf",
]
