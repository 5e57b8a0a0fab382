"""The plugin's proxies after their split into one module each: names, properties and enumeration
indices as state files saved them, option descriptions as the engine has them, no torch at load."""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from paraview import servermanager

import pvcheck

pvcheck.load_plugin(globals())
from cnn_engine.options import OPTIONS  # noqa: E402  (the plugin put the project on sys.path)

PROXIES = {("sources", "CNNActivationVolume"), ("sources", "CNNActivationVolumeReader"), ("sources", "CNNImageSet"),
           ("sources", "CNNActivationNetCDFReader"), ("filters", "CNNLayerNormalize"), ("filters", "CNNCaption"),
           ("writers", "CNNNetCDFWriter"), ("sources", "CNNChannelStatistics"), ("sources", "CNNPerturbationSweep")}


def prototype(group: str, name: str):
    return servermanager.ProxyManager().SMProxyManager.GetPrototypeProxy(group, name)


def entries(proxy, prop: str) -> list:
    domain = proxy.GetProperty(prop).FindDomain("vtkSMEnumerationDomain")
    return [domain.GetEntryText(i) for i in range(domain.GetNumberOfEntries())]


def test_loading_the_plugin_imports_no_torch():
    script = Path(tempfile.mkdtemp(prefix="cnnvis-load-")) / "load.py"
    script.write_text(f"import os, sys\nfrom paraview.simple import LoadPlugin\nLoadPlugin({str(pvcheck.PLUGIN)!r})\n"
                      "print('torch' in sys.modules)\nsys.stdout.flush()\nos._exit(0)\n")
    executable = sys.executable if sys.executable.endswith("pvpython") else "pvpython"
    result = subprocess.run([executable, str(script)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PV_PLUGIN_PATH=""))
    assert result.stdout.strip().splitlines()[-1:] == ["False"], result.stdout[-2000:] + result.stderr[-2000:]


def test_every_proxy_keeps_its_name():
    missing = [proxy for proxy in PROXIES if prototype(*proxy) is None]
    assert not missing, missing


def test_enumerations_saved_in_the_example_states_keep_their_indices():
    checked = 0
    for state in sorted((pvcheck.ROOT / "examples").glob("*.pvsm")):
        for element in ElementTree.parse(state).getroot().iter("Proxy"):
            if (element.get("group"), element.get("type")) not in PROXIES:
                continue
            current = prototype(element.get("group"), element.get("type"))
            for prop in element.iter("Property"):
                domain = prop.find("Domain[@name='enum']")
                if domain is None:
                    continue
                saved = [entry.get("text") for entry in domain.iter("Entry")]
                now = entries(current, prop.get("name"))
                assert now[:len(saved)] == saved, (state.name, element.get("type"), prop.get("name"), saved, now)
                checked += 1
    assert checked >= 30, checked  # both cat states and the image set state hold enumerations


def test_the_sources_model_properties_are_the_engine_options():
    for name in ("CNNActivationVolume", "CNNImageSet"):
        source = prototype("sources", name)
        for prop, option, default in [("LayerSet", "layers", "blocks"), ("RankBy", "rank_by", "mean"),
                                      ("Fit", "fit", "short-side"), ("Interpolation", "interpolation", "nearest"),
                                      ("Device", "device", "auto"), ("Evidence", "evidence", "None")]:
            shown = list(OPTIONS[option].shown_choices())
            assert entries(source, prop) == shown, (name, prop)
            assert shown[source.GetProperty(prop).GetDefaultValue(0)] == default, (name, prop)
        for prop, option in [("TopK", "top_k"), ("InputSize", "input_size")]:
            domain = source.GetProperty(prop).FindDomain("vtkSMIntRangeDomain")
            assert (domain.GetMinimum(0), domain.GetMaximum(0)) == (OPTIONS[option].minimum, OPTIONS[option].maximum)
            assert source.GetProperty(prop).GetDefaultValue(0) == OPTIONS[option].default
        spacing = source.GetProperty("LevelSpacing").FindDomain("vtkSMDoubleRangeDomain")
        assert (spacing.GetMinimum(0), spacing.GetMaximum(0)) == (0.0, OPTIONS["level_spacing"].maximum)
        assert source.GetProperty("Model").GetDefaultValue(0) == OPTIONS["model"].default


def test_the_image_set_offers_the_set_choices_and_defaults_to_them():
    source = prototype("sources", "CNNImageSet")
    assert entries(source, "ChannelChoice") == list(OPTIONS["channels"].shown_choices())
    assert entries(source, "ChannelChoice") == ["PerImage", "Set", "Explicit"]
    assert entries(source, "Normalization") == list(OPTIONS["normalization"].shown_choices())
    # A set is for comparing: Set and Set, where the engine's defaults are made for one image.
    assert entries(source, "ChannelChoice")[source.GetProperty("ChannelChoice").GetDefaultValue(0)] == "Set"
    assert entries(source, "Normalization")[source.GetProperty("Normalization").GetDefaultValue(0)] == "Set"
    assert (OPTIONS["channels"].default, OPTIONS["normalization"].default) == ("per-image", "per-level-minmax")
    batch = source.GetProperty("BatchSize").FindDomain("vtkSMIntRangeDomain")
    assert (batch.GetMinimum(0), batch.GetMaximum(0)) == (0, OPTIONS["batch_size"].maximum)  # 0: automatic


def test_the_filter_normalizes_one_volume_without_the_sets_choice():
    normalize = prototype("filters", "CNNLayerNormalize")
    assert entries(normalize, "Normalization") == list(OPTIONS["normalization"].shown_choices())[:-1]
    rank = normalize.GetProperty("Rank").FindDomain("vtkSMIntRangeDomain")
    assert rank.GetMaximum(0) == OPTIONS["top_k"].maximum - 1


def test_the_filter_channel_names_are_the_selection_choices_in_order():
    from cnn_engine.selection import CHANNEL_CHOICES, parse_channels

    assert [parse_channels(c) for c in entries(prototype("filters", "CNNLayerNormalize"), "Channels")] == \
        list(CHANNEL_CHOICES)


pvcheck.run(globals())
