"""The first picture of an image's volume: the input, an early, a middle and the last level in a row.

Used by ``cnnvis paraview IMAGE`` (through gui_start.py), by examples/make_states.py for the
example state files, by scripts/screenshots.py for the README pictures, and by the rendering
tests. Needs paraview.simple with the plugin loaded.

The row is read left to right like the network: the picture the network sees, then what an
early layer keeps of it (edges, colours), a middle layer, and the last layer before the
classifier, each named above its panel, on one colour legend, with the top-5 predictions and the
model that made them in the corner. Each panel is one level of the volume picked by its level
index (Extract Subset), so no interaction widget covers the picture. ``show_image_set`` builds the
same row for a CNN Image Set, whose time steps are the images of a set.
"""

from __future__ import annotations


#: Registration names of the panels, left to right (state files and tests refer to them).
PANELS = ("Input Picture", "Early Level", "Middle Level", "Last Level")
_GAP = 0.08  # space between panels, as a fraction of the image width


def chosen_levels(levels: int) -> tuple[int, int, int, int]:
    """Level indices of the four panels for a volume of ``levels`` levels: input, early, middle, last."""
    last = levels - 1
    return (0, min(1, last), last // 2, last)


def show_volume(image: str, model: str = "resnet50", weights: str = "default", view=None, **properties) -> dict:
    """Build and show the overview of ``image``'s volume; returns its proxies by role.

    ``properties`` go to the CNN Activation Volume source (Layer Set, Top K, ...). Returns
    ``{"source", "normalize", "panels" (four Extract Subset proxies), "captions", "heading", "view"}``.
    The captions are CNN Caption filters: they follow the source when its image or model changes.
    """
    from paraview import simple

    view = view or simple.GetActiveViewOrCreate("RenderView")
    source = simple.CNNActivationVolume(registrationName="CNN Activation Volume", FileName=image, Model=model,
                                        Weights=weights, **properties)
    normalize = simple.CNNLayerNormalize(registrationName="CNN Layer Normalize", Input=source)
    return _overview(source, normalize, view, "activation (each level scaled to 0-1: its min to max)")


def show_image_set(images, model: str = "resnet50", weights: str = "default", view=None, **properties) -> dict:
    """Build and show the overview of a set of images, one image per time step; returns its proxies
    by role, as :func:`show_volume`, plus ``"image_caption"``.

    ``images`` and ``properties`` go to the CNN Image Set source (its defaults: channels chosen and
    levels scaled over the whole set). The CNN Layer Normalize keeps that scale (Normalization
    None), so a colour means the same value at every time step; the CNN Caption with Content
    Image names the image of the step, its true class and the top-1 prediction.
    """
    from paraview import simple

    view = view or simple.GetActiveViewOrCreate("RenderView")
    source = simple.CNNImageSet(registrationName="CNN Image Set", Images=images, Model=model, Weights=weights,
                                **properties)
    # The animation scene and the Time slider step through the images.
    simple.GetAnimationScene().UpdateAnimationUsingDataTimeSteps()
    normalize = simple.CNNLayerNormalize(registrationName="CNN Layer Normalize", Input=source, Normalization="None")
    scene = _overview(source, normalize, view, "activation (each level scaled by its range over the whole set)")
    image_caption = simple.CNNCaption(registrationName="Image", Input=source, Content="Image")
    if scene["panels"]:
        # NaN is no value: where an image smaller than the set's grid leaves the grid empty.
        simple.GetColorTransferFunction("activation").NanOpacity = 0.0
        display = simple.Show(image_caption, view)
        display.WindowLocation = "Upper Right Corner"
        display.FontSize = 16
        simple.Render(view)
    return {**scene, "image_caption": image_caption}


def _overview(source, normalize, view, legend: str) -> dict:
    """The row of panels of ``normalize`` (the input, an early, a middle and the last level) with
    their captions, the colour legend titled ``legend`` and the predictions; see :func:`show_volume`."""
    from paraview import simple

    normalize.UpdatePipeline()
    extent = normalize.GetDataInformation().GetExtent()
    if extent[1] < extent[0]:
        # The source failed: its one message is in Output Messages. Show nothing half-made.
        return {"source": source, "normalize": normalize, "panels": [], "captions": [], "heading": None, "view": view}
    width, height, levels = extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1
    spacing = _level_spacing(normalize, levels)
    step = width * (1 + _GAP)
    lut = simple.GetColorTransferFunction("activation")
    lut.ApplyPreset("Inferno (matplotlib)", True)
    lut.RescaleTransferFunction(0.0, 1.0)
    lut.AutomaticRescaleRangeMode = "Never"
    panels, captions = [], []
    for column, (name, level) in enumerate(zip(PANELS, chosen_levels(levels))):
        panel = simple.ExtractSubset(registrationName=name, Input=normalize)
        panel.VOI = [0, width - 1, 0, height - 1, level, level]
        display = simple.Show(panel, view)
        display.SetRepresentationType("Slice")
        # Side by side, and every level moved into the z = 0 plane.
        display.Position = [column * step, 0.0, -level * spacing]
        if column == 0:
            simple.ColorBy(display, ("POINTS", "image_rgb"))
            display.MapScalars = 0  # the picture's own colours
        else:
            simple.ColorBy(display, ("POINTS", "activation"))
            display.LookupTable = lut
        caption = simple.CNNCaption(registrationName=f"{name} Caption", Input=source, Content="Level", Level=level)
        _show_in_scene(caption, [column * step, height * 1.04, 0.0], view)
        panels.append(panel)
        captions.append(caption)
    # ColorBy fits the colour map to each panel's own data range; the legend is 0-1 for all of
    # them (levels scaled per level, or by their range over a set: then one image spans less).
    lut.RescaleTransferFunction(0.0, 1.0)
    simple.Hide(normalize, view)
    simple.Hide(source, view)
    bar = simple.GetScalarBar(lut, view)
    bar.Title = legend
    bar.ComponentTitle = ""
    bar.Orientation = "Horizontal"
    bar.WindowLocation = "Lower Center"
    bar.ScalarBarLength = 0.5
    bar.RangeLabelFormat = "%.1f"
    bar.Visibility = 1
    heading = simple.CNNCaption(registrationName="Predictions", Input=source, Content="Predictions")
    heading_display = simple.Show(heading, view)
    heading_display.WindowLocation = "Upper Left Corner"
    heading_display.Justification = "Left"
    heading_display.FontSize = 14
    view.OrientationAxesVisibility = 0
    simple.Render(view)  # paraview.simple resets the camera on a view's first render: frame after it
    _frame_row(view, row_width=step * (len(PANELS) - 1) + width, height=height)
    simple.SetActiveSource(panels[-1])
    simple.Render(view)
    return {"source": source, "normalize": normalize, "panels": panels, "captions": captions, "heading": heading,
            "view": view}


def _frame_row(view, row_width: float, height: float) -> None:
    """Look straight down on the row (parallel projection), filling the view's width, with room
    above for the predictions and below for the colour legend."""
    width_px, height_px = (list(view.ViewSize) + [0, 0])[:2]
    aspect = width_px / height_px if width_px > 0 and height_px > 0 else 16 / 9
    centre = [row_width / 2, height * 0.62, 0.0]
    view.CameraParallelProjection = 1
    view.CameraFocalPoint = centre
    view.CameraPosition = [centre[0], centre[1], 10.0 * row_width]
    view.CameraViewUp = [0.0, 1.0, 0.0]
    # Half the visible height, in scene units: the row's width with a margin, or 2.3 x its height.
    view.CameraParallelScale = max(1.04 * row_width / (2 * aspect), 2.3 * height / 2)


def _level_spacing(normalize, levels: int) -> float:
    bounds = normalize.GetDataInformation().GetBounds()
    return (bounds[5] - bounds[4]) / max(levels - 1, 1)


def _show_in_scene(text_proxy, position: list[float], view) -> None:
    """Show a text anchored in the scene (it moves and zooms with the panels)."""
    from paraview import simple

    display = simple.Show(text_proxy, view)
    display.TextPropMode = "Billboard 3D Text"
    display.BillboardPosition = position
    display.FontSize = 13
    display.Color = [1.0, 1.0, 1.0]
    display.Justification = "Left"
