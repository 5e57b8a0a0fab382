"""The plugin in client/server mode: a pvserver on this machine runs the network, this pvpython is its client.

The tests run in order on one server session: the plugin loaded with ``LoadPlugin(remote=True)``
(the server gets no PV_PLUGIN_PATH), source, filter, predictions table and writer on the server,
then a bad image followed by a good one. pvserver listens on a free port and accepts only a client
with its random connect id; the client connects to 127.0.0.1. A call blocked in ParaView's C++
cannot be interrupted from Python, so every wait is bounded by a watchdog process
(``SERVER.bounded``, tests/paraview/servers.py). pvserver is stopped in every case (pvcheck.run's
cleanup: disconnect, then kill if it is still up).
"""

import os
import tempfile
from pathlib import Path

from paraview import servermanager, simple
from paraview.modules.vtkRemotingCore import vtkRemotingCoreConfiguration

import pvcheck
from servers import PvServer

pvcheck.load_plugin(globals())  # on the client too: it puts cnn_engine on sys.path, and SaveData raises
CAT = str(pvcheck.SAMPLES / "cat.jpg")
COFFEE = str(pvcheck.SAMPLES / "coffee.jpg")
FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-client-server-"))
EMPTY = (0, -1, 0, -1, 0, -1)
made = {}  # proxies made by one test and used by the next (one server session for the whole file)


def last_error(proxy) -> str:
    proxy.UpdatePropertyInformation()
    return proxy.GetPropertyValue("LastError")


def test_the_plugin_loads_on_the_server_with_remote_true():
    assert SERVER.listening.wait(60), "pvserver did not start listening within 60 s"
    vtkRemotingCoreConfiguration.GetInstance().SetConnectID(SERVER.connect_id)
    with SERVER.bounded("connecting", 90):
        connection = simple.Connect("127.0.0.1", SERVER.port, timeout=60)
    assert connection is not None and connection.IsRemote()
    definitions = servermanager.ProxyManager().GetProxyDefinitionManager()
    assert not definitions.HasDefinition("sources", "CNNActivationVolume")  # the server has no plugin yet
    with SERVER.bounded("loading the plugin on the server", 120):
        simple.LoadPlugin(str(pvcheck.PLUGIN), remote=True, ns=globals())
    assert definitions.HasDefinition("sources", "CNNActivationVolume")


def test_the_source_runs_on_the_server():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=2)
    with SERVER.bounded("running the network on the server", 300):
        source.UpdatePipeline()
    assert source.GetClientSideObject() is None  # the algorithm lives on the server
    assert tuple(source.GetDataInformation(0).GetExtent()) == (0, 336, 0, 223, 0, 18)
    made["source"] = source


def test_the_filter_output_is_fetched_to_the_client():
    normalize = CNNLayerNormalize(Input=made["source"], Normalization="PerLevelMinMax", Channels="Top1")
    with SERVER.bounded("fetching the filter's output", 120):
        data = servermanager.Fetch(normalize)
    assert data.GetDimensions() == (337, 224, 19)
    assert data.GetPointData().GetArray("activation").GetRange() == (0.0, 1.0)
    made["normalize"] = normalize


def test_the_predictions_table_is_fetched_from_output_port_1():
    with SERVER.bounded("fetching the predictions table", 120):
        table = servermanager.Fetch(made["source"], idx=1)
    assert table.GetNumberOfRows() == 5
    assert [table.GetColumnName(i) for i in range(4)] == ["rank", "class_index", "label", "probability"]


def test_the_writer_saves_on_the_server():
    import cnn_engine

    target = FOLDER / "cat.nc"
    with SERVER.bounded("saving on the server", 120):
        simple.SaveData(str(target), proxy=made["source"])
    volume = cnn_engine.read_netcdf(target)  # the server runs on this machine: its file is here
    assert volume.shape == (19, 224, 337) and volume.provenance.image_path == CAT


def test_forward_passes_and_last_error_reach_the_client():
    source = made["source"]
    made["normalize"].Channels = "MeanTopK"  # a filter change does not run the network again
    with SERVER.bounded("updating the filter", 120):
        made["normalize"].UpdatePipeline()
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("ForwardPasses") == 1
    assert source.GetPropertyValue("LastError") == ""


def test_a_refused_property_value_reaches_the_client():
    source = made["source"]
    source.TopK = 600
    assert last_error(source) == "TopK = 600 refused: it must be an integer from 1 to 16; TopK stays 2"
    source.TopK = 2
    assert last_error(source) == ""


def test_a_bad_image_after_a_good_one_reaches_the_client_and_nothing_hangs():
    source = made["source"]
    garbage = FOLDER / "garbage.jpg"
    garbage.write_bytes(b"not a picture")
    source.FileName = str(garbage)
    with SERVER.bounded("updating and fetching with a bad image", 120):
        source.UpdatePipeline()
        volume = servermanager.Fetch(source)
        table = servermanager.Fetch(source, idx=1)
        normalized = servermanager.Fetch(made["normalize"])
    assert (volume.GetNumberOfPoints(), table.GetNumberOfRows(), normalized.GetNumberOfPoints()) == (0, 0, 0)
    assert tuple(source.GetDataInformation(0).GetExtent()) == EMPTY
    assert last_error(source).startswith(f"not an image file Pillow can read: {garbage} "), last_error(source)


def test_the_writer_failure_on_the_bad_image_reaches_the_client_and_nothing_is_written():
    target = FOLDER / "garbage.nc"
    writer = simple.CreateWriter(str(target), made["source"])
    with SERVER.bounded("writing the bad image", 120):
        try:
            writer.UpdatePipeline()
        except RuntimeError:
            pass  # SaveData's check (cnn_paraview.scripting), where the client has it; LastError is the hook
    assert last_error(writer).startswith(f"nothing written to {target}: its input failed: "
                                         "not an image file Pillow can read"), last_error(writer)
    assert not target.exists() and not [p for p in os.listdir(FOLDER) if p.endswith(".part")]
    simple.Delete(writer)


def test_the_next_good_image_works():
    source = made["source"]
    source.FileName = COFFEE
    with SERVER.bounded("updating and fetching with a good image again", 300):
        data = servermanager.Fetch(made["normalize"])
    assert data.GetDimensions() == (336, 224, 19)
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("LastError") == ""
    assert source.GetPropertyValue("ForwardPasses") == 2


SERVER = PvServer("pv_test_client_server")
pvcheck.run(globals(), cleanup=SERVER.disconnect_and_stop)
