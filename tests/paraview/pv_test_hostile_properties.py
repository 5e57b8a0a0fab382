"""Hostile input to the plugin from pvpython: property values out of range, bad images, odd paths.

A script can set any value: the domains in the XML bound only the GUI's widgets. Every value out
of a property's domain is refused in its setter with one message (Output Messages and LastError)
that names the property, the value, what is allowed and the value that stays in effect; the
next allowed value works. A failed request says why once, without a traceback.
"""

import shutil
import struct
import tempfile
import zlib
from pathlib import Path

from paraview import servermanager
from paraview.simple import CreateWriter, Delete, SaveData
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

import pvcheck

pvcheck.load_plugin(globals())
CAT = str(pvcheck.SAMPLES / "cat.jpg")
FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-hostile-"))
EMPTY = (0, -1, 0, -1, 0, -1)


def cat_source(**settings):
    options = dict(FileName=CAT, Weights="random", TopK=4)
    options.update(settings)
    return CNNActivationVolume(**options)


def last_error(proxy):
    proxy.UpdatePropertyInformation()
    return proxy.GetPropertyValue("LastError")


def assert_refused(proxy, prop, value, message):
    """Setting ``prop`` to ``value`` gives exactly ``message``, once, in Output Messages and LastError."""
    with pvcheck.captured() as output:
        setattr(proxy, prop, value)
    assert last_error(proxy) == message, last_error(proxy)
    assert output.text.count(message) == 1 and output.text.count("refused") == 1, output.text
    assert "Traceback" not in output.text, output.text


def whole_extent(proxy, port=0):
    """The extent RequestInformation published (what downstream filters and clients are told)."""
    return tuple(proxy.GetClientSideObject().GetOutputInformation(port).Get(Pipeline.WHOLE_EXTENT()))


# CNN Activation Volume: ranges.

def test_top_k_600_is_refused_and_the_volume_keeps_four_ranks_without_rerunning():
    source = cat_source()
    source.UpdatePipeline()
    assert_refused(source, "TopK", 600, "TopK = 600 refused: it must be an integer from 1 to 16; TopK stays 4")
    source.UpdatePipeline()
    assert sorted(source.PointData.keys()) == ["image_luminance", "image_rgb", "rank0", "rank1", "rank2", "rank3"]
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("ForwardPasses") == 1
    Delete(source)


def test_top_k_0_is_refused():
    source = cat_source()
    assert_refused(source, "TopK", 0, "TopK = 0 refused: it must be an integer from 1 to 16; TopK stays 4")
    Delete(source)


def test_level_spacing_minus_5_is_refused_and_the_spacing_stays():
    source = cat_source(LevelSpacing=3.0)
    assert_refused(source, "LevelSpacing", -5.0,
                   "LevelSpacing = -5.0 refused: it must be a number from 0 to 100; LevelSpacing stays 3.0")
    source.UpdatePipeline()
    assert servermanager.Fetch(source).GetSpacing() == (1.0, 1.0, 3.0)
    Delete(source)


def test_level_spacing_nan_is_refused():
    source = cat_source()
    assert_refused(source, "LevelSpacing", float("nan"),
                   "LevelSpacing = nan refused: it must be a number from 0 to 100; LevelSpacing stays 0.0")
    Delete(source)


def test_input_size_8_is_refused():
    source = cat_source()
    assert_refused(source, "InputSize", 8,
                   "InputSize = 8 refused: it must be an integer from 16 to 1024; InputSize stays 224")
    Delete(source)


def test_input_size_100000_is_refused_and_the_grid_stays():
    source = cat_source()
    assert_refused(source, "InputSize", 100000,
                   "InputSize = 100000 refused: it must be an integer from 16 to 1024; InputSize stays 224")
    source.UpdatePipelineInformation()
    assert whole_extent(source) == (0, 336, 0, 223, 0, 18), whole_extent(source)
    Delete(source)


# CNN Activation Volume: enumerations set by index.

def test_layer_set_7_is_refused_instead_of_raising_index_error_in_the_setter():
    source = cat_source()
    assert_refused(source, "LayerSet", 7,
                   "LayerSet = 7 refused: it must be 0 (blocks), 1 (convs) or 2 (all); LayerSet stays 'blocks'")
    source.UpdatePipelineInformation()
    assert whole_extent(source) == (0, 336, 0, 223, 0, 18), whole_extent(source)  # 19 blocks levels
    Delete(source)


def test_rank_by_minus_1_is_refused_instead_of_picking_the_last_choice():
    source = cat_source()
    assert_refused(source, "RankBy", -1,
                   "RankBy = -1 refused: it must be 0 (mean), 1 (max), 2 (l2), 3 (effect) or 4 (ablation); "
                   "RankBy stays 'mean'")
    Delete(source)


def test_fit_3_is_refused():
    source = cat_source()
    assert_refused(source, "Fit", 3,
                   "Fit = 3 refused: it must be 0 (short-side), 1 (center-crop) or 2 (native); Fit stays 'short-side'")
    Delete(source)


def test_interpolation_2_is_refused():
    source = cat_source()
    assert_refused(source, "Interpolation", 2,
                   "Interpolation = 2 refused: it must be 0 (nearest) or 1 (bilinear); Interpolation stays 'nearest'")
    Delete(source)


def test_device_3_is_refused():
    source = cat_source()
    assert_refused(source, "Device", 3,
                   "Device = 3 refused: it must be 0 (auto), 1 (cpu) or 2 (cuda); Device stays 'auto'")
    Delete(source)


def test_evidence_5_is_refused():
    source = cat_source()
    assert_refused(source, "Evidence", 5, "Evidence = 5 refused: it must be 0 (None), 1 (CAM), 2 (GradCAM), "
                   "3 (Occlusion) or 4 (LayerCAM); Evidence stays 'None'")
    Delete(source)


# CNN Layer Normalize and CNN Caption.

def test_normalize_rank_16_is_refused():
    normalize = CNNLayerNormalize(Input=cat_source())
    assert_refused(normalize, "Rank", 16, "Rank = 16 refused: it must be an integer from 0 to 15; Rank stays 0")
    Delete(normalize)


def test_percentile_range_with_low_above_high_is_refused():
    normalize = CNNLayerNormalize(Input=cat_source())
    assert_refused(normalize, "PercentileRange", [99.0, 1.0],
                   "PercentileRange = (99.0, 1.0) refused: it must be two numbers low < high, both from 0 to 100; "
                   "PercentileRange stays (1.0, 99.0)")
    Delete(normalize)


def test_percentile_range_above_100_is_refused():
    normalize = CNNLayerNormalize(Input=cat_source())
    assert_refused(normalize, "PercentileRange", [5.0, 150.0],
                   "PercentileRange = (5.0, 150.0) refused: it must be two numbers low < high, both from 0 to 100; "
                   "PercentileRange stays (1.0, 99.0)")
    Delete(normalize)


def test_normalization_5_is_refused():
    normalize = CNNLayerNormalize(Input=cat_source())
    assert_refused(normalize, "Normalization", 5,
                   "Normalization = 5 refused: it must be 0 (PerLevelMinMax), 1 (PerLevelPercentile), "
                   "2 (PerLevelZScore), 3 (Global) or 4 (None); Normalization stays 'PerLevelMinMax'")
    Delete(normalize)


def test_channels_5_is_refused():
    normalize = CNNLayerNormalize(Input=cat_source())
    assert_refused(normalize, "Channels", 5,
                   "Channels = 5 refused: it must be 0 (Top1), 1 (Rank), 2 (MeanTopK), 3 (MaxTopK) or "
                   "4 (LayerCAM); Channels stays 'Top1'")
    Delete(normalize)


def test_caption_content_3_is_refused():
    caption = CNNCaption(Input=cat_source())
    assert_refused(caption, "Content", 3,
                   "Content = 3 refused: it must be 0 (Level), 1 (Predictions) or 2 (Image); Content stays 'Level'")
    Delete(caption)


# What the GUI shows and what the setters allow are the same ranges.

def test_every_bound_the_gui_shows_is_allowed_and_one_past_it_refused():
    source = cat_source()
    normalize = CNNLayerNormalize(Input=source)
    caption = CNNCaption(Input=source)
    checked = {source: ["TopK", "InputSize", "LayerSet", "RankBy", "Fit", "Interpolation", "Device", "Evidence"],
               normalize: ["Rank", "Normalization", "Channels"], caption: ["Content"]}
    for proxy, names in checked.items():
        for name in names:
            prop = proxy.SMProxy.GetProperty(name)
            domain = prop.GetDomain("range") or prop.GetDomain("enum")
            if domain.IsA("vtkSMEnumerationDomain"):
                low, high = 0, domain.GetNumberOfEntries() - 1
            else:
                low, high = domain.GetMinimum(0), domain.GetMaximum(0)
            for value, allowed in [(low, True), (high, True), (low - 1, False), (high + 1, False), (low, True)]:
                proxy.SMProxy.GetProperty(name).SetElement(0, value)
                proxy.SMProxy.UpdateVTKObjects()
                refused = last_error(proxy) != ""
                assert refused != allowed, (name, value, low, high, last_error(proxy))
    Delete(caption)
    Delete(normalize)
    Delete(source)


# After a refusal.

def test_a_refusal_stays_in_last_error_until_the_property_gets_an_allowed_value():
    source = cat_source()
    source.TopK = 600
    source.Model = "resnet18"  # an update for another reason does not hide the refused value
    source.UpdatePipeline()
    assert last_error(source).startswith("TopK = 600 refused"), last_error(source)
    source.TopK = 2
    assert last_error(source) == "", last_error(source)
    Delete(source)


def test_the_next_allowed_value_works_after_a_refusal():
    source = cat_source()
    source.TopK = 600
    source.TopK = 2
    source.UpdatePipeline()
    assert sorted(source.PointData.keys()) == ["image_luminance", "image_rgb", "rank0", "rank1"]
    Delete(source)


# The information properties clients read (the algorithm object is on the server there).

def test_last_error_property_holds_a_failed_request_and_clears_after_a_good_one():
    source = cat_source(FileName=str(pvcheck.SAMPLES / "missing.jpg"))
    source.UpdatePipeline()
    assert last_error(source) == f"image not found: {pvcheck.SAMPLES / 'missing.jpg'}", last_error(source)
    source.FileName = CAT
    source.UpdatePipeline()
    assert last_error(source) == "", last_error(source)
    Delete(source)


def test_forward_passes_property_counts_network_runs():
    source = cat_source()
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("ForwardPasses") == 0
    source.UpdatePipeline()
    source.LevelSpacing = 4.0
    source.UpdatePipeline()
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("ForwardPasses") == 1
    source.FileName = str(pvcheck.SAMPLES / "coffee.jpg")
    source.UpdatePipeline()
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("ForwardPasses") == 2
    Delete(source)


def test_the_filter_and_the_writer_report_their_failure_in_last_error():
    source = cat_source(FileName=str(pvcheck.SAMPLES / "missing.jpg"))
    normalize = CNNLayerNormalize(Input=source, FirstLevel=5, LastLevel=2)
    target = FOLDER / "never.nc"
    writer = CreateWriter(str(target), source)
    try:
        writer.UpdatePipeline()
    except RuntimeError:
        pass
    assert last_error(writer) == f"nothing written to {target}: its input failed: image not found: " \
                                 f"{pvcheck.SAMPLES / 'missing.jpg'}", last_error(writer)
    source.FileName = CAT
    normalize.UpdatePipeline()
    assert last_error(normalize) == "first level 5 is after last level 2", last_error(normalize)
    Delete(writer)
    Delete(normalize)
    Delete(source)


# Bad images.

def test_a_bad_image_after_a_good_one_publishes_empty_extents_on_the_image_ports():
    source = cat_source(Evidence="CAM", Model="efficientnet_lite0", Weights="default", TopK=1)
    source.UpdatePipeline()
    good = whole_extent(source, 0), whole_extent(source, 2)
    assert good == ((0, 336, 0, 223, 0, 19), (0, 336, 0, 223, 0, 0)), good  # 19 levels and the map
    garbage = FOLDER / "garbage.jpg"
    garbage.write_bytes(b"not a picture")
    source.FileName = str(garbage)
    source.UpdatePipeline()
    assert whole_extent(source, 0) == EMPTY and whole_extent(source, 2) == EMPTY
    assert last_error(source).startswith("not an image file Pillow can read"), last_error(source)
    Delete(source)


def write_decompression_bomb(path: Path, side: int = 14000) -> None:
    """A black 1-bit PNG of side x side pixels: 24 kB on disk, 196 million pixels decoded (past
    Pillow's limit of 179 million, which guards against such files)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then the row's bits
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_one_message_without_a_traceback():
    bomb = FOLDER / "bomb.png"
    write_decompression_bomb(bomb)
    source = cat_source(FileName=str(bomb))
    with pvcheck.captured() as output:
        source.UpdatePipeline()
        servermanager.Fetch(source)
    error = last_error(source)
    assert error and "decompression bomb" in error and str(bomb) in error, error
    assert output.text.count("CNN Activation Volume:") == 1 and error in output.text, output.text
    assert "Traceback" not in output.text, output.text
    assert whole_extent(source) == EMPTY
    Delete(source)


def test_the_writer_saves_a_non_ascii_image_under_a_non_ascii_name():
    import cnn_engine

    image = FOLDER / "kätzchen é.jpg"
    shutil.copyfile(CAT, image)
    source = cat_source(FileName=str(image), TopK=1)
    target = FOLDER / "kätzchen é.nc"
    SaveData(str(target), proxy=source)
    assert last_error(source) == "", last_error(source)
    volume = cnn_engine.read_netcdf(target)
    assert volume.provenance.image_path == str(image), volume.provenance.image_path
    assert volume.shape == (19, 224, 337)
    Delete(source)


pvcheck.run(globals())
