"""CNN Channel Statistics on an MPI pvserver: two ranks share the image set, the client gets the
single-process result.

``mpiexec -n 2 pvserver`` runs on this machine (one thread per rank), this pvpython connects to
it, loads the plugin on the server (``LoadPlugin(remote=True)``) and updates the source on a real
labelled set (crops of the sample photographs in class folders tabby, espresso, missile) with the
offline trained efficientnet_lite0. The reference is cnn_engine.channel_statistics in this
process (comm=None). Every wait is bounded by a watchdog (``bounded``): past its time it kills the
server's whole session (mpiexec and both ranks), which makes the blocked call fail, and 10 s
later this process; the server is stopped in every case (pvcheck.run's cleanup).
"""

import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from paraview import servermanager, simple
from paraview.modules.vtkRemotingCore import vtkRemotingCoreConfiguration

import pvcheck
from servers import PvServer

from labelled import scaled_views_set  # noqa: E402 (tests/ put on sys.path by servers)
from processes import mpi_environment, mpi_launcher  # noqa: E402

pvcheck.load_plugin(globals())  # on the client too: it puts cnn_engine (the reference) on sys.path
RANKS = 2
TOP_N = 4
INPUT_SIZE = 160
FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-mpi-server-"))
#: As tests/test_mpi_statistics.py: float32 rounding differs with each rank's batches, relative
#: to the level's largest response; allowed 1e-5 of it. Integers and the AUROC must be equal.
TOLERANCE = 1e-5
made = {}  # what one test makes and the next uses (one server session for the whole file)


def reference():
    """cnn_engine.channel_statistics of the set in this one process (comm=None), computed once."""
    if "reference" not in made:
        import cnn_engine

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cnn_engine.load_model("efficientnet_lite0", device="cpu")
            made["reference"] = cnn_engine.channel_statistics(model, str(FOLDER), input_size=INPUT_SIZE, top_n=TOP_N)
    return made["reference"]


def column(table, name: str) -> list:
    array = table.GetColumnByName(name)
    assert array is not None, f"no column {name}"
    return [array.GetValue(i) for i in range(array.GetNumberOfTuples())]


def test_the_plugin_loads_on_a_server_of_two_ranks():
    assert SERVER.listening.wait(120), "pvserver did not start listening within 120 s"
    vtkRemotingCoreConfiguration.GetInstance().SetConnectID(SERVER.connect_id)
    with SERVER.bounded("connecting", 90):
        connection = simple.Connect("127.0.0.1", SERVER.port, timeout=60)
    assert connection is not None and connection.IsRemote()
    assert connection.GetNumberOfDataPartitions() == RANKS
    with SERVER.bounded("loading the plugin on the server", 180):
        simple.LoadPlugin(str(pvcheck.PLUGIN), remote=True, ns=globals())


def test_the_source_on_the_server_shares_the_set_among_both_ranks():
    # What the source passes to cnn_engine.channel_statistics as comm, asked on the server itself.
    probe = simple.ProgrammableSource(OutputDataSetType="vtkTable", Script="\n".join((
        "from cnn_paraview.statistics_source import mpi_communicator",
        "from vtkmodules.vtkCommonCore import vtkIntArray",
        "comm = mpi_communicator()",
        "size = vtkIntArray()",
        "size.SetName('size')",
        "size.InsertNextValue(0 if comm is None else comm.Get_size())",
        "self.GetOutput().AddColumn(size)")))
    with SERVER.bounded("asking the server for its communicator", 120):
        table = servermanager.Fetch(probe)
    assert column(table, "size")[0] == RANKS
    simple.Delete(probe)


def test_the_statistics_table_equals_the_single_process_result():
    source = CNNChannelStatistics(Images=[str(FOLDER)], Model="efficientnet_lite0", TopN=TOP_N, InputSize=INPUT_SIZE)
    with SERVER.bounded("computing the statistics on two ranks", 300):
        source.UpdatePipeline()
        table = servermanager.Fetch(source)
    made["source"] = source
    one = reference()
    rows = one.rows()
    assert table.GetNumberOfRows() == len(rows) == sum(one.channel_counts)  # rank 0's rows, not repeated
    assert column(table, "level") == [row.level for row in rows]
    assert column(table, "channel") == [row.channel for row in rows]
    assert column(table, "preferred_class") == [row.preferred_class for row in rows]
    assert column(table, "images") == [12] * len(rows)
    auroc = column(table, "auroc")
    selectivity = column(table, "selectivity")
    start = 0
    for i, level in enumerate(one.levels):
        scale = max(abs(v) for v in one.exemplar_value[i].ravel() if v == v)
        means = one.class_mean[i]
        for c in range(one.channel_counts[i]):
            expected = one.selectivity[i][c]
            got = selectivity[start + c]
            best = means[c].max()
            rest = (means[c].sum() - best) / (means.shape[1] - 1)
            # (mu_best - mu_rest) / (mu_best + mu_rest) moves by at most 2 e / (mu_best + mu_rest).
            assert (math.isnan(got) and math.isnan(expected)) or abs(got - expected) <= 2 * TOLERANCE * scale / (
                best + rest), f"selectivity of {level}:{c}: {got} != {expected}"
            assert auroc[start + c] == one.auroc[i][c] or (math.isnan(auroc[start + c]) and math.isnan(one.auroc[i][c]))
        start += one.channel_counts[i]


def test_the_chosen_channel_and_the_atlas_reach_the_client_once():
    from cnn_paraview.statistics_source import atlas_canvas

    source = made["source"]
    source.Level = 5
    source.Channel = 2
    with SERVER.bounded("fetching the chosen channel and the atlas", 300):
        chosen = servermanager.Fetch(source, idx=1)
        atlas = servermanager.Fetch(source, idx=2)
    one = reference()
    assert column(chosen, "class") == list(one.class_names) == ["tabby", "missile", "espresso"]
    assert column(chosen, "images") == [4, 4, 4]
    means = column(chosen, "mean")
    scale = max(abs(v) for v in one.exemplar_value[5].ravel() if v == v)
    assert all(abs(m - e) <= TOLERANCE * scale for m, e in zip(means, one.class_mean[5][2])), (means, one.class_mean[5][2])
    width, height = atlas_canvas(TOP_N)
    assert atlas.GetDimensions() == (width, height, 1)
    values = atlas.GetPointData().GetArray("atlas").GetRange(0)
    assert values[0] < 255  # not the blank canvas of a failure: exemplar crops are drawn


def test_choosing_a_channel_computes_nothing_again_and_no_error_is_left():
    source = made["source"]
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("StatisticsRuns") == 1
    assert source.GetPropertyValue("ChosenChannel") == f"{reference().levels[5]}:2"
    assert source.GetPropertyValue("LastError") == ""


def stop_server() -> None:
    try:
        SERVER.disconnect_and_stop()
    finally:
        shutil.rmtree(FOLDER, ignore_errors=True)


scaled_views_set(FOLDER, pvcheck.SAMPLES)
# Two ranks, one thread each (2 cores); a disconnected server may take a while to end its ranks.
SERVER = PvServer("pv_test_mpi_server", mpi_launcher(RANKS), mpi_environment(os.environ), stop_wait=30)
pvcheck.run(globals(), cleanup=stop_server)
