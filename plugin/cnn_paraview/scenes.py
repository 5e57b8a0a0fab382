"""A ready-made view of a volume: source -> CNN Layer Normalize -> slice, coloured by activation.

Used by ``cnnvis paraview IMAGE`` (through gui_start.py), by examples/make_states.py to write
the example state files, and by the rendering tests. Needs paraview.simple with the plugin loaded.
"""

from __future__ import annotations


def show_volume(image: str, model: str = "resnet50", weights: str = "default", level: int | None = None,
                view=None) -> dict:
    """Build and show the pipeline for ``image``; returns its proxies by role.

    The slice is horizontal (normal z) through ``level`` (default: the middle level), so the
    camera looks at the image upright; the volume's outline shows its depth.
    """
    from paraview import simple

    view = view or simple.GetActiveViewOrCreate("RenderView")
    source = simple.CNNActivationVolume(registrationName="CNN Activation Volume", FileName=image, Model=model,
                                        Weights=weights)
    normalize = simple.CNNLayerNormalize(registrationName="CNN Layer Normalize", Input=source)
    normalize.UpdatePipeline()
    extent = normalize.GetDataInformation().GetExtent()
    bounds = normalize.GetDataInformation().GetBounds()
    levels = extent[5] - extent[4] + 1
    chosen = levels // 2 if level is None else max(0, min(level, levels - 1))
    spacing = (bounds[5] - bounds[4]) / max(levels - 1, 1)
    sliced = simple.Slice(registrationName="Level Slice", Input=normalize)
    sliced.SliceType = "Plane"
    sliced.SliceType.Origin = [(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2, bounds[4] + chosen * spacing]
    sliced.SliceType.Normal = [0.0, 0.0, 1.0]
    display = simple.Show(sliced, view)
    simple.ColorBy(display, ("POINTS", "activation"))
    lut = simple.GetColorTransferFunction("activation")
    lut.ApplyPreset("Inferno (matplotlib)", True)
    lut.RescaleTransferFunction(0.0, 1.0)
    display.SetScalarBarVisibility(view, True)
    outline = simple.Show(normalize, view)
    outline.SetRepresentationType("Outline")
    simple.ColorBy(outline, None)
    view.ResetCamera()
    simple.Render(view)
    return {"source": source, "normalize": normalize, "slice": sliced, "view": view}
