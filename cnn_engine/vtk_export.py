"""Converting an activation volume to a ``vtkImageData`` (the only module that imports VTK)."""

from __future__ import annotations

import os

import numpy as np

from .volume import ActivationVolume, luminance, rank_names, upright


def volume_to_vtk(volume: ActivationVolume):
    """See :meth:`ActivationVolume.to_vtk` for the layout."""
    from vtkmodules.vtkCommonDataModel import vtkImageData

    levels, height, width = volume.shape
    arrays = volume.arrays
    metadata = volume.metadata()
    if volume.evidence is not None and volume.evidence_info is not None:
        # The evidence map is the top level of every array (the ranks and layercam), named after
        # method and class.
        arrays = {name: np.concatenate([values, volume.evidence[None]]) for name, values in arrays.items()}
        metadata["levels"] = metadata["levels"] + [_evidence_level(volume)]
        levels += 1
    image = vtkImageData()
    image.SetDimensions(width, height, levels)
    image.SetSpacing(1.0, 1.0, volume.level_spacing)
    image.SetOrigin(0.0, 0.0, 0.0)
    for name, values in arrays.items():
        _add_point_array(image, name, upright(values))
    picture = volume.image[::-1]  # upright
    _add_point_array(image, "image_rgb", np.broadcast_to(picture, (levels,) + picture.shape), components=3)
    _add_point_array(image, "image_luminance", np.broadcast_to(luminance(picture), (levels, height, width)))
    if volume.arrays:
        # rank0 is what a new view shows, also when the volume holds layercam beside the ranks.
        image.GetPointData().SetActiveScalars((rank_names(volume.arrays) or list(volume.arrays))[0])

    add_metadata_fields(image.GetFieldData(), metadata)
    return image


def _add_point_array(image, name: str, values: np.ndarray, components: int = 1) -> None:
    """Add ``values`` (z, y, x order, or (y, x) for one slice) as point array ``name`` of ``image``.

    One copy into a fresh C-ordered buffer, which the VTK array then shares (deep=False keeps a
    reference to it): x fastest, then y, then z, as VTK expects.
    """
    from vtkmodules.util import numpy_support

    flat = np.array(values, order="C", copy=True).reshape((-1, components) if components > 1 else (-1,))
    array = numpy_support.numpy_to_vtk(flat, deep=False)
    array.SetName(name)
    image.GetPointData().AddArray(array)


def _evidence_level(volume: ActivationVolume) -> dict:
    info = volume.evidence_info
    height, width = volume.evidence.shape
    finite = volume.evidence[np.isfinite(volume.evidence)]
    return {
        "index": len(volume.levels), "name": info.level_name, "layer_type": info.method,
        "native_shape": (1, height, width), "stride": (1.0, 1.0),
        "channels": (-1,) * volume.top_k, "scores": (float("nan"),) * volume.top_k,
        "raw_min": float(finite.min()) if finite.size else float("nan"),
        "raw_max": float(finite.max()) if finite.size else float("nan"),
        # Already on the input grid: one cell per pixel, centred on it; no receptive field of its own.
        "receptive_field": (float("nan"), float("nan")), "offset": (0.0, 0.0),
        "geometry": "evidence map on the input grid",
    }


def evidence_image(volume: ActivationVolume):
    """The evidence map alone as 2-D ``vtkImageData`` (width, height, 1) on the volume's X/Y grid.

    Point arrays ``evidence`` and the picture (``image_rgb``, ``image_luminance``), upright, so
    the map can be shown over the image. Empty when the volume has no evidence map.
    """
    from vtkmodules.vtkCommonDataModel import vtkImageData

    image = vtkImageData()
    if volume.evidence is None:
        return image
    height, width = volume.evidence.shape
    image.SetDimensions(width, height, 1)
    _add_point_array(image, "evidence", volume.evidence[::-1])
    _add_point_array(image, "image_rgb", volume.image[::-1], components=3)
    _add_point_array(image, "image_luminance", luminance(volume.image[::-1]))
    image.GetPointData().SetActiveScalars("evidence")
    return image


def add_metadata_fields(field, metadata: dict) -> None:
    """Per-level metadata and predictions as field arrays, plus all of it as ``cnn_metadata`` JSON.

    ``metadata`` is :meth:`ActivationVolume.metadata` (or the same read from a file). Per level:
    ``level_name``, ``level_type``, ``native_shape``, ``stride``, ``receptive_field`` and
    ``offset`` ((rows, columns) in input pixels, image order: cell (r, c) is centred on input
    position ``offset + (r, c) * stride``, input pixel (0, 0) centred at 0; NaN in files written
    before they were recorded), ``geometry`` (``exact`` or what was assumed; ``unknown``),
    ``channel_index``, ``channel_score``, ``raw_min``, ``raw_max``; once: ``rank_by``, the ranking
    that made the scores (with its target class for ``effect`` and ``ablation``).
    """
    import json

    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkStringArray

    from .volume import _json_safe

    def strings(name: str, values: list[str]) -> None:
        array = vtkStringArray()
        array.SetName(name)
        for value in values:
            array.InsertNextValue(value)
        field.AddArray(array)

    def numbers(name: str, values, dtype, components: int = 1) -> None:
        table = np.asarray(values, dtype=dtype).reshape(-1, components)
        array = numpy_support.numpy_to_vtk(table if components > 1 else table.ravel(), deep=True)
        array.SetName(name)
        field.AddArray(array)

    def pair(values) -> list[float]:
        """(rows, columns), NaN where missing (JSON null, or metadata written before the field)."""
        return [nan if v is None else v for v in (values or (None, None))]

    def ranking(provenance: dict) -> str:
        target = provenance.get("rank_target")
        return provenance.get("rank_by", "") + (f", target class {target}" if target is not None else "")

    levels, predictions = metadata["levels"], metadata["predictions"]
    top_k = len(levels[0]["channels"]) if levels else 0
    nan = float("nan")
    strings("level_name", [lv["name"] for lv in levels])
    strings("level_type", [lv["layer_type"] for lv in levels])
    numbers("native_shape", [lv["native_shape"] for lv in levels], np.int32, 3)
    numbers("stride", [lv["stride"] for lv in levels], np.float64, 2)
    numbers("receptive_field", [pair(lv.get("receptive_field")) for lv in levels], np.float64, 2)
    numbers("offset", [pair(lv.get("offset")) for lv in levels], np.float64, 2)
    strings("geometry", [lv.get("geometry", "unknown") for lv in levels])
    numbers("channel_index", [lv["channels"] for lv in levels], np.int32, top_k)
    numbers("channel_score", [[nan if v is None else v for v in lv["scores"]] for lv in levels], np.float32, top_k)
    strings("rank_by", [ranking(metadata.get("provenance", {}))])
    numbers("raw_min", [nan if lv["raw_min"] is None else lv["raw_min"] for lv in levels], np.float32)
    numbers("raw_max", [nan if lv["raw_max"] is None else lv["raw_max"] for lv in levels], np.float32)
    numbers("prediction_index", [p["index"] for p in predictions], np.int32)
    numbers("prediction_probability", [p["probability"] for p in predictions], np.float32)
    strings("prediction_label", [p["label"] for p in predictions])
    strings("cnn_metadata", [json.dumps(_json_safe(metadata), allow_nan=False)])


def predictions_table(volume: ActivationVolume):
    """The top predictions as a ``vtkTable``: columns rank, class_index, label, probability."""
    from vtkmodules.vtkCommonCore import vtkFloatArray, vtkIntArray, vtkStringArray
    from vtkmodules.vtkCommonDataModel import vtkTable

    table = vtkTable()
    columns = {
        "rank": vtkIntArray(),
        "class_index": vtkIntArray(),
        "label": vtkStringArray(),
        "probability": vtkFloatArray(),
    }
    for name, column in columns.items():
        column.SetName(name)
        table.AddColumn(column)
    for p in volume.predictions:
        columns["rank"].InsertNextValue(p.rank)
        columns["class_index"].InsertNextValue(p.index)
        columns["label"].InsertNextValue(p.label)
        columns["probability"].InsertNextValue(p.probability)
    return table


def metadata_from_vtk(dataset) -> dict | None:
    """The ``cnn_metadata`` JSON a volume carries in its field data, or None."""
    import json

    array = dataset.GetFieldData().GetAbstractArray("cnn_metadata") if dataset is not None else None
    if array is None or array.GetNumberOfValues() < 1:
        return None
    return json.loads(array.GetValue(0))


#: Field arrays naming the image of a set (see add_set_fields), with their kinds.
SET_FIELDS = {"image_name": str, "image_path": str, "set_index": int, "set_size": int, "true_label": str,
              "true_class_index": int, "top1_label": str, "top1_probability": float}


def add_set_fields(field, volume: ActivationVolume, count: int, categories=None) -> None:
    """Field arrays naming the image of a set ``volume`` was made from (the CNN Image Set source).

    ``image_name`` (its file name), ``image_path``, ``set_index`` (its position in the set, from 0:
    the time step), ``set_size`` (``count``), ``true_label`` (its true class: the name in
    ``categories``, the model's classes, else the label the set gives; "" when unknown),
    ``true_class_index`` (-1 when unknown), ``top1_label`` and ``top1_probability`` (0 to 1).
    """
    from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkIntArray, vtkStringArray

    prov = volume.provenance
    index = prov.true_label
    known = index is not None and categories is not None and 0 <= index < len(categories)
    top = volume.predictions[0] if volume.predictions else None
    values = {
        "image_name": os.path.basename(prov.image_path or ""), "image_path": prov.image_path or "",
        "set_index": -1 if prov.set_index is None else prov.set_index, "set_size": count,
        "true_label": categories[index] if known else (prov.true_label_name or ""),
        "true_class_index": -1 if index is None else index,
        "top1_label": top.label if top else "", "top1_probability": top.probability if top else float("nan"),
    }
    for name, kind in SET_FIELDS.items():
        array = {str: vtkStringArray, int: vtkIntArray, float: vtkDoubleArray}[kind]()
        array.SetName(name)
        array.InsertNextValue(values[name])
        field.AddArray(array)


def set_fields_from_vtk(dataset) -> dict | None:
    """The fields :func:`add_set_fields` wrote, as a dict; None when ``dataset`` has none."""
    field = dataset.GetFieldData() if dataset is not None else None
    if field is None or field.GetAbstractArray("set_size") is None:
        return None
    values = {}
    for name, kind in SET_FIELDS.items():
        array = field.GetAbstractArray(name)
        values[name] = kind(array.GetValue(0)) if array is not None and array.GetNumberOfValues() else None
    return values


def volume_from_vtk(image) -> ActivationVolume:
    """Rebuild a volume from image data made by :func:`volume_to_vtk` (arrays back in image order)."""
    from vtkmodules.util import numpy_support

    from .errors import FormatError

    metadata = metadata_from_vtk(image)
    if metadata is None:
        raise FormatError("the data carries no cnn_metadata field: it was not made by the CNN Activation Volume source")
    width, height, levels = image.GetDimensions()
    has_evidence = bool(metadata.get("evidence"))
    if has_evidence:
        # The evidence map's pseudo-level (the top one) is not a layer of the network.
        metadata["levels"] = [lv for lv in metadata["levels"] if lv["index"] < levels - 1]
    if levels != len(metadata["levels"]) + has_evidence:
        raise FormatError(
            f"the data has {levels} levels but its metadata describes {len(metadata['levels'])}: save the "
            "CNN Activation Volume itself, not a part of it made by a filter"
        )
    points = image.GetPointData()
    names = [points.GetArrayName(i) for i in range(points.GetNumberOfArrays())]
    ranks = rank_names(names)
    if points.GetArray("image_rgb") is None or not ranks:
        raise FormatError("the data has no rank0... and image_rgb arrays: it is not a CNN Activation Volume")
    # layercam travels beside the ranks (not one of them); the evidence level tops it too.
    kept = ranks + (["layercam"] if "layercam" in names else [])
    # A CNN Image Set step whose image is smaller than the set's grid fills its lower-left part
    # (y up): keep that part, the image's own grid.
    rows, columns = (metadata.get("provenance", {}).get("input_size") or (height, width))[:2]
    rows, columns = min(int(rows), height), min(int(columns), width)
    stacks = {name: upright(numpy_support.vtk_to_numpy(points.GetArray(name)).reshape(levels, height, width)
                            [:, :rows, :columns]) for name in kept}  # cropped in y-up order, then flipped
    evidence = np.ascontiguousarray(stacks[ranks[0]][-1]) if has_evidence else None
    arrays = {name: np.ascontiguousarray(values[: levels - has_evidence]) for name, values in stacks.items()}
    rgb = numpy_support.vtk_to_numpy(points.GetArray("image_rgb")).reshape(levels, height, width, 3)[0, :rows, :columns]
    return ActivationVolume.from_parts(arrays, np.ascontiguousarray(rgb[::-1]), metadata, evidence)
