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
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

from paraview import servermanager, simple
from paraview.modules.vtkRemotingCore import vtkRemotingCoreConfiguration

import pvcheck

pvcheck.load_plugin(globals())  # on the client too: it puts cnn_engine (the reference) on sys.path
RANKS = 2
TOP_N = 4
INPUT_SIZE = 160
FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-mpi-server-"))
#: As tests/test_mpi_statistics.py: float32 rounding differs with each rank's batches, relative
#: to the level's largest response; allowed 1e-5 of it. Integers and the AUROC must be equal.
TOLERANCE = 1e-5
made = {}  # what one test makes and the next uses (one server session for the whole file)


def labelled_set(root: Path) -> Path:
    """Class folders of four views of a photograph: whole, mirrored, two crops at other scales."""
    from PIL import Image, ImageOps

    for label, name in (("tabby", "cat.jpg"), ("espresso", "coffee.jpg"), ("missile", "rocket.jpg")):
        picture = Image.open(pvcheck.SAMPLES / name).convert("RGB")
        picture.thumbnail((240, 240))
        width, height = picture.size
        first = picture.crop((int(width * 0.1), int(height * 0.05), int(width * 0.85), int(height * 0.9)))
        second = picture.crop((int(width * 0.2), int(height * 0.15), width, int(height * 0.95)))
        (root / label).mkdir(parents=True)
        for i, view in enumerate((picture, ImageOps.mirror(picture), first, ImageOps.mirror(second))):
            view.save(root / label / f"{label}{i}.png")
    return root


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kill_session(session: int) -> None:
    """SIGKILL every process of ``session`` (mpiexec puts each rank in a process group of its own,
    but they stay in the session that mpiexec was started in)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (name)": state ppid pgrp session
            if int(fields[3]) == session:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile


class MpiServer:
    """``mpiexec -n 2 pvserver`` on a free port, for one client that knows its random connect id,
    in a session of its own (so that mpiexec and every rank can be stopped together)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connect_id = random.randint(1, 2**31 - 1)
        # pvpython is itself an MPI process (a singleton): OpenMPI's variables in its environment
        # would make mpiexec wait silently, as if it were nested in this job. Left out.
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith(("OMPI_", "PMIX_", "ORTE_", "OPAL_"))}
        environment["OMP_NUM_THREADS"] = "1"  # one thread per rank: 2 ranks, 2 cores
        environment.pop("PV_PLUGIN_PATH", None)  # the plugin must come from LoadPlugin(remote=True)
        launcher = [shutil.which("mpiexec") or "mpiexec", "-n", str(RANKS), "-x", "OMP_NUM_THREADS"]
        if os.geteuid() == 0:
            launcher.append("--allow-run-as-root")  # OpenMPI refuses root without it (CI runs as root)
        command = launcher + [shutil.which("pvserver") or "pvserver", f"--server-port={self.port}",
                              f"--connect-id={self.connect_id}"]
        self.process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.listening = threading.Event()
        threading.Thread(target=self._echo, daemon=True).start()

    def _echo(self) -> None:
        for line in self.process.stdout:  # read on, so that no rank ever blocks on a full pipe
            print(f"pvserver: {line.rstrip()}", flush=True)
            if line.startswith("Accepting connection"):
                self.listening.set()

    def kill(self) -> None:
        kill_session(self.process.pid)

    def stop(self) -> None:
        """Wait up to 30 s for the server to exit (it does once its client disconnects), then kill
        its whole session."""
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("pv_test_mpi_server: pvserver did not exit within 30 s: killing mpiexec and its ranks", flush=True)
        self.kill()  # the ranks too, should mpiexec have gone without them
        self.process.wait()


@contextmanager
def bounded(step: str, seconds: float):
    """Let the block take at most ``seconds``; past that, kill the server's session (mpiexec and
    its ranks), then this process."""
    script = ('sleep "$1"; echo "pv_test_mpi_server: $2 took more than $1 s: stopping pvserver" >&2; '
              'pkill -KILL -s "$3"; sleep 10; echo "pv_test_mpi_server: stopping the client" >&2; kill -KILL "$4"')
    watchdog = subprocess.Popen(["sh", "-c", script, "watchdog", str(seconds), step, str(SERVER.process.pid),
                                 str(os.getpid())], start_new_session=True)
    try:
        yield
    finally:
        os.killpg(watchdog.pid, signal.SIGKILL)  # the watchdog's own session: its shell and its sleep
        watchdog.wait()


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
    with bounded("connecting", 90):
        connection = simple.Connect("127.0.0.1", SERVER.port, timeout=60)
    assert connection is not None and connection.IsRemote()
    assert connection.GetNumberOfDataPartitions() == RANKS
    with bounded("loading the plugin on the server", 180):
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
    with bounded("asking the server for its communicator", 120):
        table = servermanager.Fetch(probe)
    assert column(table, "size")[0] == RANKS
    simple.Delete(probe)


def test_the_statistics_table_equals_the_single_process_result():
    source = CNNChannelStatistics(Images=[str(FOLDER)], Model="efficientnet_lite0", TopN=TOP_N, InputSize=INPUT_SIZE)
    with bounded("computing the statistics on two ranks", 300):
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
    with bounded("fetching the chosen channel and the atlas", 300):
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
        if servermanager.ActiveConnection is not None and servermanager.ActiveConnection.IsRemote():
            with bounded("disconnecting", 60):
                simple.Disconnect()
    finally:
        SERVER.stop()
        shutil.rmtree(FOLDER, ignore_errors=True)


labelled_set(FOLDER)
SERVER = MpiServer()
pvcheck.run(globals(), cleanup=stop_server)
