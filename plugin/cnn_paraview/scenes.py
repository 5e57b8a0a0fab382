"""The first picture of an image's volume: the input, an early, a middle and the last level in a row.

Used by ``cnnvis paraview IMAGE`` (through gui_start.py), by examples/make_states.py for the
example state files, by scripts/screenshots.py for the README pictures, and by the rendering
tests. Needs paraview.simple with the plugin loaded.

The row is read left to right like the network: the picture the network sees, then what an
early layer keeps of it (edges, colours), a middle layer, and the last layer before the
classifier, each named above its panel, on one colour legend, with the top-5 predictions and the
model that made them in the corner. Each panel is one level of the volume picked by its level
index (Extract Subset), so no interaction widget covers the picture. ``show_image_set`` builds the
same row for a CNN Image Set, whose time steps are the images of a set. ``show_channel_statistics``
builds the channel study: a CNN Channel Statistics beside a CNN Image Set that shows the chosen
channel (:func:`link_chosen_channel`), with a spreadsheet, a chart and the exemplar atlas.
``show_sweep`` builds a perturbation sweep: the row of a CNN Perturbation Sweep's volume at the
time step (one severity each), above charts of probability and drift against the severity.
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


def _overview(source, normalize, view, legend: str, size_px: tuple[int, int] | None = None) -> dict:
    """The row of panels of ``normalize`` (the input, an early, a middle and the last level) with
    their captions, the colour legend titled ``legend`` and the predictions; see :func:`show_volume`.
    ``size_px``: the view's size in pixels, when its ViewSize does not know it yet (see :func:`_frame_row`)."""
    from paraview import simple

    normalize.UpdatePipeline()
    extent = normalize.GetDataInformation().GetExtent()
    if extent[1] < extent[0]:
        # The source failed: its one message is in Output Messages. Show nothing half-made.
        return {"source": source, "normalize": normalize, "panels": [], "captions": [], "heading": None, "view": view}
    width, height, levels = extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1
    spacing = _level_spacing(normalize, levels)
    step = width * (1 + _GAP)
    lut = _unit_colours("activation")
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
    _legend(lut, view, legend)
    heading = simple.CNNCaption(registrationName="Predictions", Input=source, Content="Predictions")
    heading_display = simple.Show(heading, view)
    heading_display.WindowLocation = "Upper Left Corner"
    heading_display.Justification = "Left"
    heading_display.FontSize = 14
    view.OrientationAxesVisibility = 0
    simple.Render(view)  # paraview.simple resets the camera on a view's first render: frame after it
    _frame_row(view, row_width=step * (len(PANELS) - 1) + width, height=height, size_px=size_px)
    simple.SetActiveSource(panels[-1])
    simple.Render(view)
    return {"source": source, "normalize": normalize, "panels": panels, "captions": captions, "heading": heading,
            "view": view}


# The overview's texts, in pixels of the view (their fonts do not scale with the scene): the
# predictions at the top left (six lines at font 14), a level's caption above its panel (three
# lines at font 13), the colour legend with its title and labels at the bottom.
_PREDICTIONS_PX = 105
_CAPTIONS_PX = 44
_LEGEND_PX = 68


def _frame_row(view, row_width: float, height: float, size_px: tuple[int, int] | None = None) -> None:
    """Look straight down on the row (parallel projection; scene units: the row is ``row_width``
    wide and ``height`` high, its bottom at y = 0) as large as the view allows with the texts
    beside it: the predictions above, the panels' captions, the colour legend below. ``size_px``
    (width, height in pixels) stands for the view's ViewSize, which pvpython leaves at 400 x 400
    for a view just put into a split layout. A parallel camera keeps its height when the view
    grows: a larger window shows the same framing, with more room for the texts."""
    width_px, height_px = size_px or (list(view.ViewSize) + [0, 0])[:2]
    if width_px <= 0 or height_px <= 0:
        width_px, height_px = 1280, 720
    free_px = height_px - _PREDICTIONS_PX - _CAPTIONS_PX - _LEGEND_PX
    # The row's height on screen: all the free height unless the width limits it first; never
    # below a fifth of the view (a very small view lets the texts overlap rather than lose the row).
    row_px = max(min(free_px, 0.96 * width_px * height / row_width), 0.2 * height_px)
    units_per_px = height / row_px
    # The row and its captions in the middle of the band between the legend and the predictions.
    band_px = height_px - _PREDICTIONS_PX - _LEGEND_PX
    row_bottom_px = max(_LEGEND_PX + (band_px - row_px - _CAPTIONS_PX) / 2, 0.0)
    scale = height_px * units_per_px / 2  # half the visible height, in scene units
    centre = [row_width / 2, scale - row_bottom_px * units_per_px, 0.0]
    view.CameraParallelProjection = 1
    view.CameraFocalPoint = centre
    view.CameraPosition = [centre[0], centre[1], 10.0 * row_width]
    view.CameraViewUp = [0.0, 1.0, 0.0]
    view.CameraParallelScale = scale


def _unit_colours(array: str):
    """The colour map of ``array``: Inferno over 0-1, kept there (values are scaled to 0-1)."""
    from paraview import simple

    lut = simple.GetColorTransferFunction(array)
    lut.ApplyPreset("Inferno (matplotlib)", True)
    lut.RescaleTransferFunction(0.0, 1.0)
    lut.AutomaticRescaleRangeMode = "Never"
    return lut


def _legend(lut, view, title: str, location: str = "Lower Center", horizontal: bool = True,
            label_format: str = "%.1f") -> None:
    """Show ``lut``'s colour legend in ``view``: titled, its range labelled with ``label_format``."""
    from paraview import simple

    bar = simple.GetScalarBar(lut, view)
    bar.Title = title
    bar.ComponentTitle = ""
    if horizontal:
        bar.Orientation = "Horizontal"
        bar.ScalarBarLength = 0.5
    bar.WindowLocation = location
    bar.RangeLabelFormat = label_format
    bar.Visibility = 1


def _named_views(names: tuple[str, ...], kinds: tuple[str, ...]) -> dict:
    """A new view of each kind, registered under its name (state files and GetViews keep it)."""
    from paraview import simple

    views = {name: simple.CreateView(kind) for name, kind in zip(names, kinds)}
    for name, view in views.items():
        simple.RenameView(name, view)
    return views


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


# --- the channel study --------------------------------------------------------------------------------

#: Registration name of the property link from CNN Channel Statistics' Chosen Channel to CNN
#: Image Set's Explicit Channels (state files keep it under this name).
CHOSEN_CHANNEL_LINK = "CNN Chosen Channel"
#: Registration names of the study's views, in the layout's reading order.
STUDY_VIEWS = ("Chosen Channel Over The Set", "Exemplar Atlas", "Channels", "Class Means")


def link_chosen_channel(statistics, image_set, name: str = CHOSEN_CHANNEL_LINK):
    """Link ``statistics``' Chosen Channel (LEVEL:CHANNEL, read-only) to ``image_set``'s Explicit
    Channels with a vtkSMPropertyLink registered as ``name`` (saved in and restored from state
    files): the image set then shows the channel chosen by Level and Channel, at every time step,
    when its Channel Choice is Explicit. The link copies the value whenever the statistics'
    information is updated: on Apply in the GUI; in a script by :func:`choose_channel`."""
    from paraview import servermanager

    link = servermanager.vtkSMPropertyLink()
    link.AddLinkedProperty(statistics.SMProxy, "ChosenChannel", servermanager.vtkSMLink.INPUT)
    link.AddLinkedProperty(image_set.SMProxy, "ExplicitChannels", servermanager.vtkSMLink.OUTPUT)
    servermanager.ProxyManager().RegisterLink(name, link)
    _unlink_with_its_proxies(name, link)
    return link


def _unlink_with_its_proxies(name: str, link) -> None:
    """Unregister the link ``name`` as soon as one of its proxies is unregistered (Delete,
    ResetSession): ParaView 5.11 keeps a link to a deleted proxy and crashes (SIGSEGV) saving the
    next state. The proxy manager reports each unregistration after it, while the proxy still lives."""
    from paraview import servermanager

    manager = servermanager.ProxyManager().SMProxyManager

    def unregistered(caller, event) -> None:
        if caller.GetRegisteredLink(name) is not link:  # unregistered or replaced meanwhile
            caller.RemoveObserver(observer)
            return
        if any(not caller.GetProxyName("sources", link.GetLinkedProxy(i))
               for i in range(link.GetNumberOfLinkedObjects())):
            caller.UnRegisterLink(name)
            caller.RemoveObserver(observer)

    observer = manager.AddObserver("UnRegisterEvent", unregistered)


def choose_channel(statistics, level: int, channel: int) -> str:
    """Choose ``channel`` of level ``level`` (an index, -1 the last) on ``statistics`` and pass the
    choice on through the property link (the statistics' information is updated: no recomputing).
    Returns the chosen LEVEL:CHANNEL ("" when the level or channel does not exist: Last Error says why)."""
    statistics.Level = level
    statistics.Channel = channel
    statistics.UpdatePipelineInformation()
    return statistics.GetPropertyValue("ChosenChannel")


def most_selective_channel(statistics, level: int = -1) -> int:
    """The channel of level ``level`` (an index, -1 the last) with the highest selectivity (then
    AUROC) in ``statistics``' table (output port 0); -1 when the table has no such row."""
    import math

    from paraview import servermanager

    statistics.UpdatePipeline()
    table = servermanager.Fetch(statistics, idx=0)
    if table is None or table.GetNumberOfRows() == 0:
        return -1
    column = {name: table.GetColumnByName(name) for name in ("level_index", "channel", "selectivity", "auroc")}
    rows = range(table.GetNumberOfRows())
    levels = [column["level_index"].GetValue(r) for r in rows]
    wanted = max(levels) if level < 0 else level

    def score(value: float) -> float:
        return value if math.isfinite(value) else -math.inf

    best = max((r for r in rows if levels[r] == wanted), default=None,
               key=lambda r: (score(column["selectivity"].GetValue(r)), score(column["auroc"].GetValue(r)),
                              -column["channel"].GetValue(r)))
    return -1 if best is None else int(column["channel"].GetValue(best))


def show_channel_statistics(images, model: str = "resnet50", weights: str = "default", level: int = -1,
                            channel: int | None = None, layout=None, **properties) -> dict:
    """Build and show the channel study of a labelled set of images; returns its proxies by role.

    A CNN Channel Statistics over ``images`` (``properties`` go to it; those CNN Image Set has too,
    such as Input Size and Fit, to the image set as well) and a CNN Image Set of the same images
    with Channel Choice Explicit, linked (:func:`link_chosen_channel`) so that it shows the chosen
    channel: ``channel`` of level ``level`` (default: the level's most selective channel). Four
    views in one layout: the set's pictures and the chosen channel's map side by side, one image
    per time step, scaled over the set, the chosen level and channel named in a corner ("Chosen Channel
    Name"); the level's exemplar atlas; the table of every level and
    channel (click a column's header to sort by it); the chosen channel's class means as a bar
    chart. Returns ``{"statistics", "image_set", "picture", "image_caption", "link", "views" (by
    STUDY_VIEWS name), "layout"}``.
    """
    from paraview import simple

    statistics = simple.CNNChannelStatistics(registrationName="CNN Channel Statistics", Images=images, Model=model,
                                             Weights=weights, Level=level, **properties)
    if channel is None:
        channel = max(most_selective_channel(statistics, level), 0)
    choose_channel(statistics, level, channel)
    shared = {key: value for key, value in properties.items() if key in ("InputSize", "Fit", "Device", "BatchSize",
                                                                           "TrustTorchScript")}
    image_set = simple.CNNImageSet(registrationName="CNN Image Set", Images=images, Model=model, Weights=weights,
                                   ChannelChoice="Explicit",
                                   ExplicitChannels=statistics.GetPropertyValue("ChosenChannel"), **shared)
    link = link_chosen_channel(statistics, image_set)
    simple.GetAnimationScene().UpdateAnimationUsingDataTimeSteps()

    layout = layout or simple.CreateLayout("CNN Channel Statistics")
    views = _named_views(STUDY_VIEWS, ("RenderView", "RenderView", "SpreadSheetView", "XYBarChartView"))
    left, right = 1, 2
    layout.SplitHorizontal(0, 0.5)
    layout.SplitVertical(left, 0.55)
    layout.SplitVertical(right, 0.55)
    for cell, name in zip((3, 5, 4, 6), STUDY_VIEWS):  # top left, top right, bottom left, bottom right
        layout.AssignView(cell, views[name])

    picture, image_caption = _show_set_channel(image_set, views[STUDY_VIEWS[0]])
    _name_chosen_channel(statistics, views[STUDY_VIEWS[0]])
    _show_atlas(statistics, views[STUDY_VIEWS[1]])
    # In network order. Not sorted by selectivity from the start: ParaView's sorting prints a line
    # on the terminal for each NaN (undefined selectivity, common where responses are signed).
    simple.Show(simple.OutputPort(statistics, 0), views[STUDY_VIEWS[2]])
    _show_class_means(statistics, views[STUDY_VIEWS[3]])
    simple.SetActiveView(views[STUDY_VIEWS[0]])
    simple.SetActiveSource(statistics)
    return {"statistics": statistics, "image_set": image_set, "picture": picture, "image_caption": image_caption,
            "link": link, "views": views, "layout": layout}


def _show_set_channel(image_set, view):
    """The set's picture and the chosen channel's map (its one level) side by side, on the set's
    scale, with the image's caption; returns (the picture's Extract Subset, the caption)."""
    from paraview import simple

    image_set.UpdatePipeline()
    extent = image_set.GetDataInformation().GetExtent()
    width = max(extent[1] - extent[0] + 1, 1)
    picture = simple.ExtractSubset(registrationName="Picture", Input=image_set)
    shown = simple.Show(picture, view)
    shown.SetRepresentationType("Slice")
    simple.ColorBy(shown, ("POINTS", "image_rgb"))
    shown.MapScalars = 0  # the picture's own colours
    channel = simple.Show(image_set, view)
    channel.SetRepresentationType("Slice")
    channel.Position = [width * (1 + _GAP), 0.0, 0.0]
    simple.ColorBy(channel, ("POINTS", "rank0"))
    lut = _unit_colours("rank0")
    lut.NanOpacity = 0.0
    _legend(lut, view, "chosen channel (scaled by its range over the set)")
    caption = simple.CNNCaption(registrationName="Image", Input=image_set, Content="Image")
    text = simple.Show(caption, view)
    text.WindowLocation = "Upper Center"
    text.FontSize = 14
    view.OrientationAxesVisibility = 0
    view.InteractionMode = "2D"
    simple.Render(view)
    simple.ResetCamera(view)
    return picture, caption


def _name_chosen_channel(statistics, view) -> None:
    """The chosen channel's level and index in the lower right corner of ``view`` (beside the colour
    legend), following Level and Channel:
    a Python Annotation of the chosen channel's table (port 1), whose field data names it."""
    from paraview import simple

    name = simple.PythonAnnotation(registrationName="Chosen Channel Name", Input=simple.OutputPort(statistics, 1))
    name.ArrayAssociation = "Field Data"
    # %-formatting: with str.format braces the 5.11 filter printed "level Undefined" (seen, not explained).
    name.Expression = "'level %s\\nchannel %s' % tuple(chosen_channel.GetValue(0).rsplit(':', 1))"
    shown = simple.Show(name, view)
    shown.WindowLocation = "Lower Right Corner"
    shown.FontSize = 12


def _show_atlas(statistics, view) -> None:
    """The level's exemplar atlas (output port 2) in its own colours, seen flat."""
    from paraview import simple

    shown = simple.Show(simple.OutputPort(statistics, 2), view)
    shown.SetRepresentationType("Slice")
    shown.MapScalars = 0
    view.OrientationAxesVisibility = 0
    view.InteractionMode = "2D"
    simple.Render(view)
    simple.ResetCamera(view)
    # ResetCamera leaves room for the atlas' bounding circle; the tiles are what matter: fill the
    # height (the view is wider than high in the layout), with a small margin.
    bounds = simple.OutputPort(statistics, 2).GetDataInformation().GetBounds()
    if bounds[1] >= bounds[0]:
        view.CameraParallelScale = 0.52 * max(bounds[3] - bounds[2], bounds[1] - bounds[0])


def _show_class_means(statistics, chart) -> None:
    """The chosen channel's class means (output port 1) as bars, one per class, named."""
    from paraview import servermanager, simple

    bars = simple.Show(simple.OutputPort(statistics, 1), chart)
    bars.UseIndexForXAxis = 1
    bars.SeriesVisibility = ["mean"]
    table = servermanager.Fetch(statistics, idx=1)
    names = table.GetColumnByName("class") if table is not None else None
    if names is not None:
        # The classes of the set do not change with the channel: name the bars once.
        chart.BottomAxisUseCustomLabels = 1
        # Every other name one line lower: neighbours' names overlap in a small chart otherwise
        # (5.11's axis labels cannot be turned).
        chart.BottomAxisLabels = [str(value) for i in range(names.GetNumberOfValues())
                                  for value in (i, "\n" * (i % 2) + names.GetValue(i))]
    chart.ChartTitle = "class means of the chosen channel"
    chart.ChartTitleFontSize = 14
    chart.LeftAxisTitle = "class mean"
    chart.BottomAxisTitle = ""
    chart.BottomAxisLabelFontSize = 10
    simple.Render(chart)


# --- the perturbation sweep ---------------------------------------------------------------------------

#: Registration names of the sweep scene's views: the volume at the step on top, the charts below.
#: (``cnnvis paraview --state`` makes the first render view by name the active one: the volume's.)
SWEEP_VIEWS = ("Activations At The Step", "Probability", "Drift", "Drift Map")
SWEEP_TOP = 0.6  # the overview's share of the layout's height


def show_sweep(image: str, perturbation: str = "blur", model: str = "resnet50", weights: str = "default", layout=None,
               overview_px: tuple[int, int] | None = None, **properties) -> dict:
    """Build and show a perturbation sweep of ``image``, one severity per time step; returns its
    proxies by role.

    A CNN Perturbation Sweep (``properties`` go to it: From, To, Steps, Layer Set...) in four
    views of one layout: on top, the overview row of the volume at the time step (the perturbed
    picture the network sees, an early, a middle and the last level) with the predictions and a
    caption naming the step (``blur sigma 2.5  5/9 cat.jpg  top-1: ...``); below, side by side,
    the probability of the clean class (and of the Target Class) against the severity, with a
    marker at the step shown, the drift of every level against the severity, and the drift as a
    level x step picture. The Time slider moves the volume, the picture, the captions and the
    marker together. ``overview_px``: the top view's (width, height) in pixels to frame the row
    for, when its ViewSize does not know it yet (pvpython gives a view put into a split layout 400
    x 400; the GUI its size on screen). Returns ``{"source", "normalize", "panels", "captions", "heading",
    "step_caption", "views" (by SWEEP_VIEWS name), "layout"}``.
    """
    from paraview import servermanager, simple

    source = simple.CNNPerturbationSweep(registrationName="CNN Perturbation Sweep", FileName=image,
                                         Perturbation=perturbation, Model=model, Weights=weights, **properties)
    # The animation scene and the Time slider step through the severities.
    simple.GetAnimationScene().UpdateAnimationUsingDataTimeSteps()
    layout = layout or simple.CreateLayout("CNN Perturbation Sweep")
    views = _named_views(SWEEP_VIEWS, ("RenderView", "XYChartView", "XYChartView", "RenderView"))
    layout.SplitVertical(0, SWEEP_TOP)  # cell 1 on top, 2 below
    layout.SplitHorizontal(2, 1 / 3)  # cells 5 and 6
    layout.SplitHorizontal(6, 0.5)  # cells 13 and 14
    for cell, name in zip((1, 5, 13, 14), SWEEP_VIEWS):
        layout.AssignView(cell, views[name])

    normalize = simple.CNNLayerNormalize(registrationName="CNN Layer Normalize", Input=source)
    scene = _overview(source, normalize, views[SWEEP_VIEWS[0]], "activation (each level scaled to 0-1 at each step)",
                      size_px=overview_px)
    step_caption = simple.CNNCaption(registrationName="Step", Input=source, Content="Image")
    if scene["panels"]:
        display = simple.Show(step_caption, views[SWEEP_VIEWS[0]])
        display.WindowLocation = "Upper Right Corner"
        display.FontSize = 16
    table = servermanager.Fetch(source, idx=3)  # the sweep is computed: its table names the series
    names = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())] if table is not None else []
    field = table.GetFieldData() if table is not None else None
    unit = field.GetAbstractArray("unit").GetValue(0) if field is not None and field.GetAbstractArray("unit") else ""
    clean, target = (field.GetAbstractArray(name).GetValue(0) if field is not None and field.GetAbstractArray(name)
                     else "" for name in ("clean_label", "target_label"))
    axis = f"{source.GetPropertyValue('TimeLabelAnnotation')} ({unit})" if unit else "severity"
    _show_probability(source, views[SWEEP_VIEWS[1]], axis, clean, target if properties.get("TargetClass") else "")
    _show_drift(source, views[SWEEP_VIEWS[2]], axis, [name for name in names if name.startswith("drift ")])
    _show_drift_map(source, views[SWEEP_VIEWS[3]])
    simple.SetActiveView(views[SWEEP_VIEWS[0]])
    simple.SetActiveSource(source)
    return {**scene, "step_caption": step_caption, "views": views, "layout": layout}


def _show_probability(source, chart, axis: str, clean: str, target: str) -> None:
    """Port 3 as lines against the severity: the clean class's probability (and the target's), and
    a marker at the time step shown. ``clean`` and ``target`` (empty: none) name the classes."""
    from paraview import simple

    lines = simple.Show(simple.OutputPort(source, 3), chart)
    lines.UseIndexForXAxis = 0
    lines.XArrayName = "severity"
    shown = ["clean_probability", "shown_step"] + (["target_probability"] if target else [])
    lines.SeriesVisibility = shown
    lines.SeriesLabel = ["clean_probability", f"clean class ({clean})" if clean else "clean class",
                         "target_probability", f"target class ({target})" if target else "target class",
                         "shown_step", "this step"]
    lines.SeriesLineStyle = ["shown_step", "0"]
    lines.SeriesMarkerStyle = ["clean_probability", "4", "shown_step", "4"]
    lines.SeriesMarkerSize = ["shown_step", "14"]
    lines.SeriesLineThickness = ["clean_probability", "2", "target_probability", "2"]
    chart.ChartTitle = "probability against severity"
    chart.ChartTitleFontSize = 14
    chart.LeftAxisTitle = "probability"
    chart.BottomAxisTitle = axis
    chart.LeftAxisUseCustomRange = 1
    chart.LeftAxisRangeMinimum = 0.0
    chart.LeftAxisRangeMaximum = 1.0
    simple.Render(chart)


def _show_drift(source, chart, axis: str, series: list) -> None:
    """Port 3's drift columns as one line per level against the severity."""
    from paraview import simple

    lines = simple.Show(simple.OutputPort(source, 3), chart)
    lines.UseIndexForXAxis = 0
    lines.XArrayName = "severity"
    lines.SeriesVisibility = series
    chart.ChartTitle = "drift per level against severity"
    chart.ChartTitleFontSize = 14
    chart.LeftAxisTitle = "1 - cosine similarity"
    chart.BottomAxisTitle = axis
    chart.ShowLegend = 0  # one line per level: the drift map below names them by index
    simple.Render(chart)


def _show_drift_map(source, view) -> None:
    """Port 4: drift as a picture, one cell per (time step, level), seen flat with axes."""
    from paraview import simple

    shown = simple.Show(simple.OutputPort(source, 4), view)
    shown.SetRepresentationType("Surface")
    simple.ColorBy(shown, ("CELLS", "drift"))
    lut = simple.GetColorTransferFunction("drift")
    lut.ApplyPreset("Viridis (matplotlib)", True)
    _legend(lut, view, "drift", location="Lower Right Corner", horizontal=False, label_format="%.2f")
    grid = shown.DataAxesGrid
    grid.GridAxesVisibility = 1
    grid.XTitle = "time step (severity increasing)"
    grid.YTitle = "level"
    grid.ZTitle = ""
    grid.FacesToRender = 4  # the image's own plane (the min-XY face) only
    grid.AxesToLabel = 3  # and labels on its lower (min-Y) and left (min-X) edges only
    view.OrientationAxesVisibility = 0
    view.InteractionMode = "2D"
    simple.Render(view)
    simple.ResetCamera(view)
    view.SMProxy.SynchronizeCameraProperties()
    view.CameraParallelScale = view.CameraParallelScale / 0.7  # room for the legend and the axes' labels
