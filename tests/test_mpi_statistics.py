"""Channel statistics beyond one machine: plugin/cnn_paraview/statistics_mpi.py under
``mpiexec -n N pvbatch --symmetric`` (ParaView's own MPI engine, Debian's mpi4py) gives the
single-process result of cnn_engine.channel_statistics, exemplars included.

Real processes on a real labelled set: crops and mirrors of the sample photographs in class
folders (tabby, espresso, missile), the offline trained efficientnet_lite0. Every run is bounded
(300 s) and its whole session is killed if it overruns, so a hung collective fails the
test instead of hanging it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnn_engine.statistics import channel_statistics, read_channel_statistics
from labelled import scaled_views_set
from processes import kill_session, mpi_environment, mpi_launcher

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "plugin" / "cnn_paraview" / "statistics_mpi.py"
PVBATCH = shutil.which("pvbatch") or "/usr/bin/pvbatch"
TIMEOUT = 300
#: Small and quick: 12 images at 160 pixels, 4 exemplars per channel (fewer than each rank's
#: share, so that the ranks' candidates really have to be merged).
OPTIONS = ("--model", "efficientnet_lite0", "--input-size", "160", "--top-n", "4")
#: Each rank batches its own share, and another batch composition (or thread count) lets the
#: network's float32 kernels round differently in the last bits. That error is relative to the
#: size of the numbers summed, so it is compared with the level's largest response (its top
#: exemplar value), not with a mean that may be near 0. Seen here: up to 3.5e-6 of it on the last
#: level (whose responses are clipped at 6 by ReLU6 while its sums are larger), below 1e-6
#: elsewhere; allowed: 1e-5. Integers must be equal (preferred classes; exemplar images, cells and
#: boxes, except that two exemplars whose values lie within the rounding may change places), and
#: so must the AUROC, which only the order of the images' means decides.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory) -> Path:
    return scaled_views_set(tmp_path_factory.mktemp("labelled-set"), ROOT / "sample_images")


def run_script(ranks: int | None, *arguments: str, symmetric: bool = True) -> subprocess.CompletedProcess:
    """The script under pvbatch: alone (``ranks`` None), or under mpiexec on ``ranks`` processes
    of this machine, one thread each. Kills its whole session past :data:`TIMEOUT`."""
    command = [PVBATCH] + (["--symmetric"] if symmetric and ranks else []) + [str(SCRIPT), *arguments]
    if ranks:
        command = mpi_launcher(ranks, ("OMP_NUM_THREADS", "TORCH_HOME")) + command
    environment = mpi_environment(os.environ)  # TORCH_HOME stays conftest's empty cache (offline)
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_session(process.pid)  # mpiexec and every rank it started
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command)} took more than {TIMEOUT} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def statistics_file(ranks: int | None, folder: Path, target: Path, *options: str):
    result = run_script(ranks, str(folder), "-o", str(target), *OPTIONS, *options)
    assert result.returncode == 0, result.stderr
    return read_channel_statistics(target), result


@pytest.fixture(scope="module")
def single_process(labelled_set, lite0):
    """cnn_engine.channel_statistics in this process, comm=None: the reference, with one exemplar
    more than the script keeps (the one a near tie at the cut could bring in)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return channel_statistics(lite0, [str(labelled_set)], input_size=160, top_n=5)


def _scale(stats, level: int) -> float:
    """The level's largest response: what its float32 rounding is relative to."""
    return float(np.nanmax(np.abs(stats.exemplar_value[level])))


def _selectivity_tolerance(stats, level: int) -> np.ndarray:
    """(mu_best - mu_rest) / (mu_best + mu_rest) moves by at most 2 e / (mu_best + mu_rest) when
    each class mean moves by e (both means non-negative where it is defined)."""
    means = stats.class_mean[level]
    best = means.max(axis=1)
    rest = (means.sum(axis=1) - best) / (means.shape[1] - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2 * TOLERANCE * _scale(stats, level) / (best + rest)


@pytest.fixture(scope="module")
def two_ranks(labelled_set, tmp_path_factory):
    """The script on 2 ranks: the statistics it wrote, what it printed, the file."""
    target = tmp_path_factory.mktemp("two-ranks") / "study.nc"
    return (*statistics_file(2, labelled_set, target), target)


def test_two_ranks_give_the_single_process_statistics(two_ranks, single_process):
    two, one = two_ranks[0], single_process
    assert (two.levels, two.channel_counts, two.classes) == (one.levels, one.channel_counts, (281, 657, 967))
    assert two.image_paths == one.image_paths and two.images == one.images == 12
    np.testing.assert_array_equal(two.class_counts, [4, 4, 4])
    for i, level in enumerate(one.levels):
        np.testing.assert_array_equal(two.preferred_class[i], one.preferred_class[i], err_msg=level)
        np.testing.assert_array_equal(two.auroc[i], one.auroc[i], err_msg=level)
        for name in ("mean", "class_mean", "class_std"):
            np.testing.assert_allclose(getattr(two, name)[i], getattr(one, name)[i], rtol=0,
                                       atol=TOLERANCE * _scale(one, i), err_msg=f"{name} of {level}")
        defined = np.isfinite(one.selectivity[i])
        np.testing.assert_array_equal(np.isfinite(two.selectivity[i]), defined, err_msg=level)
        difference = np.abs(two.selectivity[i] - one.selectivity[i])[defined]
        assert (difference <= _selectivity_tolerance(one, i)[defined]).all(), f"selectivity of {level}"


def test_two_ranks_give_the_single_process_exemplars(two_ranks, single_process):
    two, one = two_ranks[0], single_process
    for i, level in enumerate(one.levels):
        tolerance = TOLERANCE * _scale(one, i)
        np.testing.assert_allclose(two.exemplar_value[i], one.exemplar_value[i][:, :4], rtol=0, atol=tolerance,
                                   err_msg=f"exemplar value of {level}")
        # Slot j holds the reference's exemplar j (image, row, column and box), or one that is
        # within the rounding of it in value, which the ranks' rounding may have put first.
        same = np.ones((one.channel_counts[i], 4, 5), dtype=bool)  # kept slot j against reference slot k
        for name in ("position", "row", "col"):
            same &= getattr(two, f"exemplar_{name}")[i][:, :, None] == getattr(one, f"exemplar_{name}")[i][:, None, :]
        same &= (two.exemplar_box[i][:, :, None, :] == one.exemplar_box[i][:, None, :, :]).all(axis=-1)
        values = one.exemplar_value[i].astype(np.float64)
        tied = np.abs(values[:, :4, None] - values[:, None, :]) <= tolerance
        tied |= np.isnan(values[:, :4, None]) & np.isnan(values[:, None, :])  # empty slots
        assert (same & tied).any(axis=2).all(), f"exemplars of {level}"
        kept = np.sort(two.exemplar_position[i], axis=1)
        assert (np.diff(kept, axis=1) > 0).all(), f"an image twice among the exemplars of a channel of {level}"


def test_the_result_does_not_depend_on_how_the_ranks_split_the_set(labelled_set, tmp_path):
    # One image per batch and one thread per process: every image's numbers are computed the same
    # way whatever rank runs it, so 1, 2 and 3 ranks (3 > the 2 cores: oversubscribed) must give
    # bit-identical files, exemplars merged from shares of 12, 6 + 6 and 4 + 4 + 4 images included.
    results = [statistics_file(ranks, labelled_set, tmp_path / f"ranks{ranks}.nc", "--batch-size", "1")[0]
               for ranks in (None, 2, 3)]
    names = ("mean", "class_mean", "class_std", "preferred_class", "selectivity", "auroc", "exemplar_position",
             "exemplar_value", "exemplar_row", "exemplar_col", "exemplar_box")
    for other in results[1:]:
        for name in names:
            for mine, theirs in zip(getattr(other, name), getattr(results[0], name)):
                np.testing.assert_array_equal(mine, theirs, err_msg=name)


def test_only_rank_0_reports_progress_and_the_summary(two_ranks):
    result = two_ranks[1]
    assert result.stderr.count("cnnvis: 2 MPI ranks share the 12 images; the bar counts rank 0's 6\n") == 1
    assert result.stderr.count("| 0/6 [") == 1  # one bar started (each rank's share is 6 images)
    assert "computing: 100%|##########| 6/6 [" in result.stderr
    assert result.stdout.count("efficientnet_lite0, layer set blocks: 12 images, 3 classes") == 1
    assert result.stdout.count("level 18 _swish_1: 1280 channels, the 5 most selective") == 1
    assert result.stdout.splitlines()[-1] == f"wrote {two_ranks[2]}"


def test_pvbatch_without_symmetric_is_refused_instead_of_hanging(labelled_set, tmp_path):
    target = tmp_path / "study.nc"
    result = run_script(2, str(labelled_set), "-o", str(target), *OPTIONS, symmetric=False)
    assert result.returncode == 2
    assert ("cnnvis: error: pvbatch runs this script on rank 0 only, and the other 1 rank(s) would never take "
            "their share: start it as mpiexec -n N pvbatch --symmetric SCRIPT ...") in result.stderr
    assert not target.exists()


def test_an_output_that_cannot_be_written_stops_every_rank_before_computing(labelled_set, tmp_path):
    target = tmp_path / "missing" / "study.nc"
    result = run_script(2, str(labelled_set), "-o", str(target), *OPTIONS)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("cnnvis: error:")]
    assert errors == [f"cnnvis: error: cannot write {target}: the folder {target.parent} does not exist"]
    assert "image/s" not in result.stderr  # no progress: nothing was computed
