"""The activation volume: layer outputs stacked down the depth of the network, and what they are.

Axis order and orientation, stated once for the whole engine:

* In Python (``ActivationVolume.arrays``) every array is (levels, height, width) in *image
  order*: row 0 is the top of the image, column 0 its left edge, level 0 the network input.
* In VTK (:meth:`ActivationVolume.to_vtk`) and netCDF (:mod:`cnn_engine.netcdf`) the rows are
  flipped so the image stands upright in ParaView's default view: x grows to the right, y grows
  up (image row ``i`` is at ``y = height - 1 - i``), z = level index x ``level_spacing``. One
  grid unit is one pixel of the network input.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from .evidence import EvidenceInfo

from .normalize import DEFAULT_PERCENTILES, normalize, parse_normalization


@dataclass(frozen=True)
class LevelInfo:
    """What one level of the volume is.

    ``native_shape`` is (channels, height, width) of the layer output. Its geometry on the
    input, (rows, columns) each, in input pixels, computed from the network's graph (see
    :mod:`cnn_engine.receptive`): ``stride`` is the distance between neighbouring cells,
    ``receptive_field`` the side of the input region a cell sees, ``offset`` where the centre of
    cell (0, 0) lies (input pixel (0, 0) is centred at 0.0): cell (r, c) is centred on input
    position (offset[0] + r * stride[0], offset[1] + c * stride[1]) and drawn there.
    ``geometry`` is ``exact`` when every operation on the path was understood, otherwise it
    names what was assumed. Files written before these fields read NaN and ``unknown``.
    ``channels`` are the kept channel indices, best first, and ``scores`` their ranking scores
    (``Provenance.rank_by`` says which ranking); a layer with fewer channels than ``top_k`` has
    ``-1`` and NaN there and NaN maps. ``raw_min``/``raw_max`` are the range of the kept maps
    before any normalisation.
    """

    index: int
    name: str
    layer_type: str
    native_shape: tuple[int, int, int]
    stride: tuple[float, float]
    channels: tuple[int, ...]
    scores: tuple[float, ...]
    raw_min: float
    raw_max: float
    receptive_field: tuple[float, float] = (float("nan"), float("nan"))
    offset: tuple[float, float] = (float("nan"), float("nan"))
    geometry: str = "unknown"


@dataclass(frozen=True)
class Prediction:
    """One of the network's top classes: ``rank`` 1 is the most probable."""

    rank: int
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Provenance:
    """Where a volume came from: image, model, settings, and the engine that made it.

    ``trained`` is True for trained weights, False for random ones, None when unknown (a plain
    ``torch.nn.Module`` passed in). ``labels`` says where the class labels come from: ``ImageNet``,
    ``ImageNet (assumed: 1000 outputs)``, ``given (N classes)`` or ``unknown (not ImageNet-shaped)``
    (files written before this field read as ``ImageNet``). ``rank_target`` is the class index
    the ``effect`` and ``ablation`` rankings were made for (None for the other rankings).
    For an image of a set (:func:`cnn_engine.compute_volumes`): ``set_index`` is its position in
    the set, ``true_label`` its class index in the model's labels and ``true_label_name`` the
    label as the set gives it (folder name, list-file label); None when unknown or not in a set.
    """

    image_path: str | None
    image_sha256: str
    model: str
    weights: str
    trained: bool | None
    preprocessing: dict[str, Any]
    input_size: tuple[int, int]
    layers: str
    top_k: int
    rank_by: str
    interpolation: str
    device: str
    engine_version: str
    created: str
    labels: str = "ImageNet"
    rank_target: int | None = None
    set_index: int | None = None
    true_label: int | None = None
    true_label_name: str | None = None


@dataclass
class ActivationVolume:
    """Layer activations on a common grid, with their metadata.

    ``arrays`` maps ``rank0`` ... ``rank{K-1}`` to float32 arrays (levels, height, width) in
    image order: ``rank0`` holds, on each level, the map of that layer's best channel. With
    ``evidence="layercam"`` it also holds ``layercam``, (levels, height, width): each level's
    LayerCAM map for the evidence target, drawn with the same geometry.
    ``image`` is the network input picture, (height, width, 3) uint8, image order.
    ``normalization`` says what was applied to ``arrays`` (``none`` for raw activations).
    ``evidence`` is the class evidence map, (height, width) float32, image order, when one was
    asked for; ``evidence_info`` says which method and class made it.
    """

    arrays: dict[str, np.ndarray]
    levels: list[LevelInfo]
    predictions: list[Prediction]
    provenance: Provenance
    image: np.ndarray
    level_spacing: float
    normalization: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)
    evidence: np.ndarray | None = None
    evidence_info: "EvidenceInfo | None" = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(levels, height, width) of every array."""
        return (len(self.levels),) + tuple(self.image.shape[:2])

    @property
    def top_k(self) -> int:
        return len(rank_names(self.arrays))

    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]

    def normalized(self, method: str = "per-level-minmax", percentiles: tuple[float, float] = DEFAULT_PERCENTILES) -> "ActivationVolume":
        """A copy with every array normalised (see :mod:`cnn_engine.normalize`)."""
        method = parse_normalization(method)
        if self.normalization != "none" and method != "none":
            raise ValueError(f"this volume is already normalised ({self.normalization}); normalise the raw one")
        arrays = {name: normalize(values, method, percentiles) for name, values in self.arrays.items()}
        return replace(self, arrays=arrays, normalization=self.normalization if method == "none" else method)

    def metadata(self) -> dict[str, Any]:
        """Everything but the arrays and the image, as JSON-ready data."""
        return {
            "levels": [asdict(level) for level in self.levels],
            "predictions": [asdict(p) for p in self.predictions],
            "provenance": asdict(self.provenance),
            "level_spacing": self.level_spacing,
            "normalization": self.normalization,
            "orientation": "arrays in files and VTK are upright: row 0 is the bottom of the image",
            **({"extra": self.extra} if self.extra else {}),
            **({"evidence": asdict(self.evidence_info)} if self.evidence_info else {}),
        }

    def metadata_json(self) -> str:
        return json.dumps(_json_safe(self.metadata()), allow_nan=False)

    @staticmethod
    def from_parts(arrays: dict[str, np.ndarray], image: np.ndarray, metadata: dict[str, Any],
                   evidence: np.ndarray | None = None) -> "ActivationVolume":
        """Rebuild a volume from image-order arrays and :meth:`metadata` (as read from a file)."""
        levels = [
            LevelInfo(
                index=int(d["index"]),
                name=d["name"],
                layer_type=d["layer_type"],
                native_shape=tuple(int(v) for v in d["native_shape"]),
                stride=tuple(float(v) for v in d["stride"]),
                channels=tuple(int(v) for v in d["channels"]),
                scores=tuple(_float(v) for v in d["scores"]),
                raw_min=_float(d["raw_min"]),
                raw_max=_float(d["raw_max"]),
                receptive_field=tuple(_float(v) for v in d.get("receptive_field", (None, None))),
                offset=tuple(_float(v) for v in d.get("offset", (None, None))),
                geometry=d.get("geometry", "unknown"),
            )
            for d in metadata["levels"]
        ]
        prov = dict(metadata["provenance"])
        prov["input_size"] = tuple(prov["input_size"])
        return ActivationVolume(
            arrays=arrays,
            levels=levels,
            predictions=[Prediction(**p) for p in metadata["predictions"]],
            provenance=Provenance(**prov),
            image=image,
            level_spacing=float(metadata["level_spacing"]),
            normalization=metadata.get("normalization", "none"),
            extra=metadata.get("extra", {}),
            evidence=evidence,
            evidence_info=_evidence_info(metadata.get("evidence")),
        )

    def to_netcdf(self, path) -> "Path":
        """Write the volume as CF netCDF, atomically (see :mod:`cnn_engine.netcdf`)."""
        from .netcdf import write_netcdf

        return write_netcdf(self, path)

    def to_vtk(self):
        """The volume as a ``vtkImageData`` (VTK is imported only here).

        Dimensions (width, height, levels), spacing (1, 1, level_spacing), origin 0, upright
        (see the module docstring). Point arrays: ``rank0`` ..., ``layercam`` when present;
        ``image_rgb`` (3 x uint8) and ``image_luminance`` (float32, 0-255, Rec. 601), repeated on
        every level so the picture can be shown under any slice. Field data: per-level metadata
        (``level_name``, ``level_type``, ``native_shape``, ``stride``, ``receptive_field``,
        ``offset``, ``geometry``, ``channel_index``, ``channel_score``, ``raw_min``,
        ``raw_max``), ``rank_by``, predictions, and ``cnn_metadata`` (all metadata as JSON).
        """
        from .vtk_export import volume_to_vtk

        return volume_to_vtk(self)


def _evidence_info(data: dict[str, Any] | None):
    if not data:
        return None
    from .evidence import EvidenceInfo

    return EvidenceInfo(**{**data, "target_probability": _float(data["target_probability"])})


def rank_names(names) -> list[str]:
    """The ``rank0``, ``rank1``, ... names among ``names`` (None entries allowed), in rank order."""
    ranks = [n for n in names if n and n.startswith("rank") and n[4:].isdigit()]
    return sorted(ranks, key=lambda n: int(n[4:]))


def upright(values: np.ndarray) -> np.ndarray:
    """Flip the rows of (..., height, width) image-order arrays into y-up order (a view).

    The flip is its own inverse: applied to y-up data it gives image order back. For an
    (height, width, 3) picture flip axis 0 instead: ``picture[::-1]``.
    """
    return values[..., ::-1, :]


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (..., 3) uint8 picture, float32 in 0-255."""
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: it is written as null (and read back as NaN)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    return value
