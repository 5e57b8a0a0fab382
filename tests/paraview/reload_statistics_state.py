"""pvpython reload_statistics_state.py STATE PICTURE [LEVEL CHANNEL]: load a channel-study state in
a fresh process, save a picture of its layout, then choose channel CHANNEL of level LEVEL on the
CNN Channel Statistics (as a user changes Level and Channel and presses Apply) and read what the
linked CNN Image Set shows at time step 1.

Prints a JSON summary as its last line: the source and view names, the chosen-channel link's
(proxy, property, direction) entries, the statistics' Chosen Channel and the set's Explicit
Channels after loading, and after the choice the set's level names and channel indices (field
data of time step 1) and the statistics' runs.
"""

import json
import os
import sys


def field(data, name: str) -> list:
    array = data.GetFieldData().GetAbstractArray(name)
    return [array.GetValue(i) for i in range(array.GetNumberOfValues())] if array is not None else []


if __name__ == "__main__":
    from paraview import servermanager, simple

    state, picture = sys.argv[1], sys.argv[2]
    simple.LoadState(state)
    # Without the plugin, LoadState only logs "Could not create a proxy": check they exist.
    for name in ("CNN Channel Statistics", "CNN Image Set"):
        assert simple.FindSource(name) is not None, f"{name} missing after loading {state}"
    statistics, image_set = simple.FindSource("CNN Channel Statistics"), simple.FindSource("CNN Image Set")
    from cnn_paraview.scenes import CHOSEN_CHANNEL_LINK, choose_channel

    link = servermanager.ProxyManager().SMProxyManager.GetRegisteredLink(CHOSEN_CHANNEL_LINK)
    linked = [] if link is None else [
        (link.GetLinkedProxy(i).GetXMLName(), link.GetLinkedPropertyName(i), link.GetLinkedObjectDirection(i))
        for i in range(link.GetNumberOfLinkedObjects())]
    simple._DisableFirstRenderCameraReset()  # the state holds its cameras
    for view in simple.GetViews():
        simple.Render(view)
    layouts = list(simple.GetLayouts().values())
    if layouts:  # a state saved from a script may have no views
        simple.SaveScreenshot(picture, layouts[0], ImageResolution=[1600, 1000])
    statistics.UpdatePropertyInformation()
    summary = {
        "sources": sorted(name for (name, _), _ in simple.GetSources().items()),
        "views": sorted(view.GetXMLName() for view in simple.GetViews()),
        "link": linked,
        "chosen_after_loading": statistics.GetPropertyValue("ChosenChannel"),
        "explicit_after_loading": image_set.ExplicitChannels,
    }
    if len(sys.argv) > 4:
        statistics.UpdatePipeline()  # computed once (a state without views has not asked yet)
        summary["chosen"] = choose_channel(statistics, int(sys.argv[3]), int(sys.argv[4]))
        image_set.UpdatePipeline(time=1)
        data = servermanager.Fetch(image_set)
        summary["set_levels"] = field(data, "level_name")
        summary["set_channels"] = field(data, "channel_index")
        summary["explicit"] = image_set.ExplicitChannels
        statistics.UpdatePipeline()  # the chosen channel's outputs: no computing again
        statistics.UpdatePropertyInformation()
        summary["statistics_runs"] = statistics.GetPropertyValue("StatisticsRuns")
    print(json.dumps(summary))
    sys.stdout.flush()
    os._exit(0)
