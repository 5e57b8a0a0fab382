"""Hostile input to the command line and the API: one clear message each, never a traceback, a
hang, memory exhaustion, or a half-written or hidden temporary file.

Command-line cases run the real ``cnnvis`` in a subprocess (one line on stderr, exit status 2);
API cases call cnn_engine. Output locations are real: a FIFO, /dev/zero, /dev/full, /proc, and
tmpfs file systems mounted for the test (full, read-only, with an immutable file), since
permission bits do not stop root.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import xarray
from PIL import Image

import cnn_engine
from cnn_engine import ImageError, OutputError
from cnn_engine.atomic import atomic_write
from cnn_engine.images import MAX_IMAGE_BYTES, image_size, load_image
from cnn_engine.overlay import save_picture

CNNVIS = str(Path(sys.executable).parent / "cnnvis")
# Fast and offline: every command-line case runs this model unless it needs another.
RESNET18 = ("--model", "resnet18", "--weights", "random")


def run(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``cnnvis ARGS``; a hang fails the test through ``subprocess.TimeoutExpired``."""
    return subprocess.run([CNNVIS, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("cnnvis: error: ") and message in result.stderr, result.stderr


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries (``.NAME.XXXX.part``/``.probe``) anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob(".*") if p.suffix in (".part", ".probe"))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` RGB pixels (its data is short)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is changed to declare ``width`` x ``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 120, 40)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""
    def expired(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator:
    """``tmpfs("size=64k")`` mounts a small tmpfs for the test and returns its folder (unmounted after)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the tests run as root in CI)")
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"mount{len(mounted)}"
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture(scope="module")
def resnet18():
    return cnn_engine.load_model("resnet18", weights="random", device="cpu")


@pytest.fixture(scope="module")
def small_volume(resnet18, cat_path):
    return cnn_engine.compute_volume(resnet18, cat_path, layers="blocks", top_k=1)


# --- Non-ASCII paths ---------------------------------------------------------------------------

def test_cli_non_ascii_image_names_export_into_a_non_ascii_folder_and_read_back_equal(cat_path, tmp_path):
    names = ["kätzchen.jpg", "name with spaces é.png"]
    shutil.copy(cat_path, tmp_path / names[0])
    Image.open(cat_path).save(tmp_path / names[1])
    out = tmp_path / "ausgabe é"
    result = run("export", *(str(tmp_path / n) for n in names), "-o", str(out), *RESNET18, "--top-k", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["kätzchen.nc", "name with spaces é.nc"]
    for name in names:
        written = out / f"{Path(name).stem}.nc"
        volume = cnn_engine.read_netcdf(written)
        assert volume.provenance.image_path == str(tmp_path / name)
        with xarray.open_dataset(written) as ds:
            assert ds.attrs["image_path"] == str(tmp_path / name)
            assert ds.attrs["title"] == f"resnet18 activations of {name}"


def test_cli_folder_export_writes_every_image_around_a_non_ascii_name(cat_path, tmp_path):
    folder = tmp_path / "bilder"
    folder.mkdir()
    for name in ("a.jpg", "kätzchen.jpg", "z.jpg"):
        shutil.copy(cat_path, folder / name)
    result = run("export", str(folder), "-o", str(tmp_path / "ausgabe é"), *RESNET18, "--top-k", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "ausgabe é").iterdir()) == ["a.nc", "kätzchen.nc", "z.nc"]
    assert f"wrote 3 of 3 volumes to {tmp_path / 'ausgabe é'}" in result.stdout


def test_api_non_ascii_image_and_output_paths_round_trip_with_equal_attributes(resnet18, cat_path, tmp_path):
    image = tmp_path / "name with spaces é.jpg"
    shutil.copy(cat_path, image)
    (tmp_path / "ausgabe é").mkdir()
    target = tmp_path / "ausgabe é" / "kätzchen.nc"
    volume = cnn_engine.compute_volume(resnet18, image, layers="blocks", top_k=1)
    volume.to_netcdf(target)
    back = cnn_engine.read_netcdf(target)
    assert back.provenance == volume.provenance
    with xarray.open_dataset(target) as ds:
        assert ds.attrs["image_path"] == str(image)
        assert ds.attrs["title"] == "resnet18 activations of name with spaces é.jpg"


def test_api_longest_non_ascii_output_name_is_written_atomically(small_volume, tmp_path):
    name = "é" * 126 + ".nc"  # 255 bytes in UTF-8: the longest file name; its temporary must be shorter
    small_volume.to_netcdf(tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    assert cnn_engine.read_netcdf(tmp_path / name).shape == small_volume.shape


# --- Top-k and memory ----------------------------------------------------------------------------

def test_cli_top_k_above_every_layers_channel_count_is_refused_at_once(cat_path, tmp_path):
    started = time.monotonic()
    result = run("export", str(cat_path), "-o", str(tmp_path / "x.nc"), *RESNET18, "--top-k", "100000")
    assert_one_error_line(result, "top_k 100000 is more than the 512 channels of the widest chosen layer "
                                  "(layer4.0): use a top_k of at most 512 (--top-k 512), or choose wider layers")
    assert time.monotonic() - started < 60  # no forward pass, no allocation: model loading only
    assert list(tmp_path.iterdir()) == []


def test_cli_volume_larger_than_the_available_memory_is_refused_before_allocating(cat_path, tmp_path):
    # 2048 ranks x 173 levels x 680 x 1022 pixels x 4 bytes: about 917 GiB.
    result = run("export", str(cat_path), "-o", str(tmp_path / "x.nc"), "--model", "resnet50", "--weights", "random",
                 "--layers", "all", "--top-k", "2048", "--input-size", "680")
    assert_one_error_line(result, "the volume would need 917.3 GiB of memory (top_k 2048 x 173 levels x 680 x 1022 "
                                  "pixels x 4 bytes), more than the ")
    assert "available: lower top_k, choose fewer layers or a smaller input size" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_api_top_k_above_the_widest_chosen_layer_is_refused_naming_its_channels(resnet18, cat_path):
    with pytest.raises(cnn_engine.CnnEngineError, match=r"top_k 4 is more than the 3 channels of the widest "
                                                        r"chosen layer \(input\)"):
        cnn_engine.compute_volume(resnet18, cat_path, layers=["input"], top_k=4)


def test_api_top_k_up_to_the_widest_layer_keeps_nan_maps_for_narrower_layers(resnet18, cat_path):
    volume = cnn_engine.compute_volume(resnet18, cat_path, layers=["input", "layer1"], top_k=64)
    assert volume.top_k == 64
    assert volume.levels[0].channels[3:] == (-1,) * 61 and np.isnan(volume.arrays["rank63"][0]).all()
    assert not np.isnan(volume.arrays["rank63"][1]).any()


def test_api_volume_larger_than_the_available_memory_is_refused_before_allocating(resnet50_random, cat_path):
    started = time.monotonic()
    with pytest.raises(cnn_engine.CnnEngineError, match=r"the volume would need 917\.3 GiB of memory"):
        cnn_engine.compute_volume(resnet50_random, cat_path, layers="all", top_k=2048, input_size=680)
    assert time.monotonic() - started < 10  # refused before the forward pass


# --- Images that are not regular files, too large, or bombs ------------------------------------

def test_cli_fifo_image_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    result = run("export", str(tmp_path / "pipe.jpg"), "-o", str(tmp_path / "x.nc"), *RESNET18, timeout=120)
    assert_one_error_line(result, f"{tmp_path / 'pipe.jpg'} is a FIFO (named pipe), not a regular file: "
                                  "give an image file")


@pytest.mark.parametrize("link", [False, True], ids=["dev_zero", "link_to_dev_zero"])
def test_cli_character_device_image_is_refused_before_reading(link, tmp_path):
    image = "/dev/zero"
    if link:
        image = str(tmp_path / "zero.jpg")
        os.symlink("/dev/zero", image)
    result = run("export", image, "-o", str(tmp_path / "x.nc"), *RESNET18, timeout=120)
    through = " (a link to /dev/zero)" if link else ""
    assert_one_error_line(result, f"{image}{through} is a character device, not a regular file")


def test_cli_folder_given_as_the_image_to_explain_is_refused(tmp_path):
    (tmp_path / "photo.jpg").mkdir()
    result = run("explain", str(tmp_path / "photo.jpg"), "--method", "cam", "-o", str(tmp_path / "x.png"), *RESNET18)
    assert_one_error_line(result, f"{tmp_path / 'photo.jpg'} is a folder, not an image file")


def test_cli_image_file_above_the_size_limit_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as file:
        file.truncate(MAX_IMAGE_BYTES + 1)  # sparse: takes no disk space
    result = run("export", str(huge), "-o", str(tmp_path / "x.nc"), *RESNET18)
    assert_one_error_line(result, f"image file {huge} is 256 MiB, more than the 256 MiB an image may have: "
                                  "scale it down or save it compressed (PNG, JPEG) first")


def test_cli_decompression_bomb_is_reported_once_without_traceback(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(30000, 30000))
    result = run("export", str(tmp_path / "bomb.png"), "-o", str(tmp_path / "x.nc"), *RESNET18)
    assert_one_error_line(result, f"image {tmp_path / 'bomb.png'} declares more pixels than the 178,956,970 an "
                                  "image may have (a decompression bomb, or a huge picture): scale it down first")
    assert result.stderr.count("decompression bomb") == 1


def test_cli_folder_export_reports_each_bad_image_once_and_writes_the_good_ones(cat_path, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(cat_path, folder / "a_good.jpg")
    os.mkfifo(folder / "b_fifo.jpg")
    os.symlink("/dev/zero", folder / "c_zero.jpg")
    (folder / "d_folder.jpg").mkdir()  # a subfolder of the set (read recursively), not a bad image
    (folder / "e_bomb.png").write_bytes(bomb_png(30000, 30000))
    (folder / "f_empty.jpg").write_bytes(b"")
    (folder / "g_text.jpg").write_text("not a picture")
    shutil.copy(cat_path, folder / "h_kätzchen.jpg")
    result = run("export", str(folder), "-o", str(tmp_path / "out"), *RESNET18, "--top-k", "1", timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_good.nc", "h_kätzchen.nc"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("cnnvis: error: ")]
    bad = ["b_fifo.jpg", "c_zero.jpg", "e_bomb.png", "f_empty.jpg", "g_text.jpg"]
    assert [next(name for name in bad if name in line) for line in errors] == bad  # each once, in order
    assert f"wrote 2 of 7 volumes to {tmp_path / 'out'}" in result.stdout


def test_api_fifo_image_is_refused_before_reading(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with deadline(20):
        with pytest.raises(ImageError, match="is a FIFO \\(named pipe\\), not a regular file"):
            load_image(tmp_path / "pipe.png")
        # The plugin asks for the size first (RequestInformation): refused the same way.
        with pytest.raises(ImageError, match="is a FIFO \\(named pipe\\), not a regular file"):
            image_size(tmp_path / "pipe.png")


def test_api_link_to_dev_zero_is_refused_before_reading(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.png")
    with deadline(20):
        for read in (load_image, image_size):
            with pytest.raises(ImageError, match=r"zero\.png \(a link to /dev/zero\) is a character device"):
                read(tmp_path / "zero.png")


def test_api_folder_given_as_an_image_is_refused_by_the_size_probe_too(tmp_path):
    with pytest.raises(ImageError, match="is a folder, not an image file"):
        image_size(tmp_path)


def test_api_image_file_above_the_size_limit_is_refused(tmp_path):
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as file:
        file.truncate(MAX_IMAGE_BYTES + 1)
    for read in (load_image, image_size):
        with pytest.raises(ImageError, match="is 256 MiB, more than the 256 MiB an image may have"):
            read(huge)


def test_api_decompression_bomb_is_one_image_error_without_warnings(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(30000, 30000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
        for read in (load_image, image_size):
            with pytest.raises(ImageError, match="declares more pixels than the 178,956,970 an image may have"):
                read(tmp_path / "bomb.png")


def test_api_pixel_limit_applies_even_when_pillows_own_is_switched_off(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(30000, 30000))
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with pytest.raises(ImageError, match="declares 30000x30000 pixels, more than the 178,956,970"):
            load_image(tmp_path / "bomb.png")
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def test_api_large_picture_below_the_limit_gives_its_size_without_a_bomb_warning(tmp_path):
    # 100 million pixels: above Pillow's warning level, below its (and the engine's) limit.
    (tmp_path / "large.jpg").write_bytes(jpeg_declaring(10000, 10000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(tmp_path / "large.jpg") == (10000, 10000)


# --- Output locations ----------------------------------------------------------------------------

def test_cli_output_under_proc_is_a_message_not_a_traceback(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", "/proc/x.nc", *RESNET18)
    assert_one_error_line(result, "cannot write /proc/x.nc: the folder /proc does not take new files "
                                  "(No such file or directory): write elsewhere")


@pytest.mark.parametrize("command, message", [
    (["export", "CAT", "-o", "/dev/full"],
     "output /dev/full is a character device, not a folder: give a folder, or a file name ending in .nc"),
    (["explain", "CAT", "--method", "cam", "-o", "/dev/full"],
     "cannot write /dev/full: it is a character device, not a regular file"),
    (["explain", "CAT", "--method", "cam", "-o", "x.png", "--nc", "/dev/full"],
     "cannot write /dev/full: it is a character device, not a regular file"),
], ids=["export_folder", "explain_picture", "explain_nc"])
def test_cli_device_file_as_output_is_refused(command, message, cat_path, tmp_path):
    result = run(*[str(cat_path) if a == "CAT" else a for a in command], *RESNET18, cwd=tmp_path)
    assert_one_error_line(result, message)
    assert Path("/dev/full").is_char_device()
    assert list(tmp_path.iterdir()) == []


def test_cli_read_only_file_system_output_is_a_message(cat_path, tmpfs):
    folder = tmpfs("ro,size=64k")
    result = run("export", str(cat_path), "-o", str(folder / "x.nc"), *RESNET18)
    assert_one_error_line(result, f"cannot write {folder / 'x.nc'}: the folder {folder} is on a read-only file "
                                  "system: write elsewhere")


def test_cli_full_disk_is_a_message_and_leaves_no_temporary(cat_path, tmpfs):
    folder = tmpfs("size=64k")
    result = run("export", str(cat_path), "-o", str(folder / "x.nc"), *RESNET18, "--top-k", "1")
    assert_one_error_line(result, f"cannot write netCDF file {folder / 'x.nc'}: No space left on device; "
                                  "the disk is full: free some space or write elsewhere")
    assert os.listdir(folder) == []


def test_cli_immutable_existing_file_is_a_message_and_stays_as_it_was(cat_path, tmpfs):
    folder = tmpfs("size=64m")
    target = folder / "x.nc"
    target.write_bytes(b"keep me")
    subprocess.run(["chattr", "+i", str(target)], check=True)
    result = run("export", str(cat_path), "-o", str(target), *RESNET18, "--top-k", "1")
    assert_one_error_line(result, f"cannot write {target}: the existing file is read-only: write elsewhere or "
                                  "make it writable")
    assert target.read_bytes() == b"keep me" and os.listdir(folder) == ["x.nc"]


def test_cli_output_folder_vanishing_during_a_folder_export_is_reported_per_image(cat_path, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(4):
        shutil.copy(cat_path, folder / f"cat{index}.jpg")
    out = tmp_path / "out"
    process = subprocess.Popen([CNNVIS, "export", str(folder), "-o", str(out), *RESNET18, "--layers", "all"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline_at = time.monotonic() + 300
        while not (out / "cat0.nc").exists() and process.poll() is None and time.monotonic() < deadline_at:
            time.sleep(0.01)
        # Gone at once (a rename), then deleted: nothing the export writes later can land in it.
        os.rename(out, tmp_path / "gone")
        shutil.rmtree(tmp_path / "gone")
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 2 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("cnnvis: error: ")]
    assert 1 <= len(errors) <= 3 and all(f"cannot write {out}" in line or "netCDF file" in line for line in errors)
    assert f"wrote {4 - len(errors)} of 4 volumes to {out}" in stdout
    assert not out.exists()


def test_api_device_file_as_output_is_refused_and_left_alone(small_volume):
    with pytest.raises(OutputError, match="cannot write /dev/full: it is a character device, not a regular file"):
        small_volume.to_netcdf("/dev/full")
    assert Path("/dev/full").is_char_device()


def test_api_output_under_proc_is_an_output_error(small_volume):
    with pytest.raises(OutputError, match="the folder /proc does not take new files"):
        small_volume.to_netcdf("/proc/x.nc")


def test_api_explain_picture_under_proc_is_an_output_error():
    with pytest.raises(OutputError, match="the folder /proc does not take new files"):
        save_picture(np.zeros((8, 8, 3), np.uint8), "/proc/x.png")


def test_api_explain_picture_with_an_unknown_extension_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match=r"unknown picture type '\.xyz'; use \.png or \.jpg"):
        save_picture(np.zeros((8, 8, 3), np.uint8), tmp_path / "x.xyz")
    assert list(tmp_path.iterdir()) == []


def test_api_read_only_file_system_is_an_output_error(small_volume, tmpfs):
    folder = tmpfs("ro,size=64k")
    with pytest.raises(OutputError, match="is on a read-only file system: write elsewhere"):
        small_volume.to_netcdf(folder / "x.nc")


def test_api_full_disk_is_an_output_error_leaving_nothing(small_volume, tmpfs):
    folder = tmpfs("size=64k")
    with pytest.raises(OutputError, match="No space left on device; the disk is full"):
        small_volume.to_netcdf(folder / "x.nc")
    with pytest.raises(OutputError, match="No space left on device; the disk is full"):
        save_picture(np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8), folder / "x.png")
    assert os.listdir(folder) == []


def test_api_immutable_existing_file_is_an_output_error(small_volume, tmpfs):
    folder = tmpfs("size=64m")
    target = folder / "x.nc"
    target.write_bytes(b"keep me")
    subprocess.run(["chattr", "+i", str(target)], check=True)
    with pytest.raises(OutputError, match="the existing file is read-only: write elsewhere or make it writable"):
        small_volume.to_netcdf(target)
    assert target.read_bytes() == b"keep me" and os.listdir(folder) == ["x.nc"]


def test_api_folder_vanishing_during_the_write_is_an_output_error(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()

    def write_then_lose_the_folder(temporary: str) -> None:
        Path(temporary).write_bytes(b"data")
        shutil.rmtree(folder)

    with pytest.raises(OutputError, match=r"cannot write file .*out/x\.bin: No such file or directory; the folder "
                                          r"does not exist \(any more\)"):
        atomic_write(folder / "x.bin", write_then_lose_the_folder)
    assert list(tmp_path.iterdir()) == []


# --- Signals during a write ----------------------------------------------------------------------

def _writing_into(pid: int, folder: Path) -> bool:
    """True while process ``pid`` has a file of ``folder`` open: the temporary being written (on
    Linux it has no name yet, and shows in /proc as ``folder/#inode (deleted)``)."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{descriptor}").startswith(f"{folder}/"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("signum, status", [
    (signal.SIGTERM, -signal.SIGTERM),  # the process ends by the signal, as without cnnvis's cleanup
    (signal.SIGHUP, -signal.SIGHUP),
    (signal.SIGINT, 130),               # KeyboardInterrupt: "cnnvis: interrupted", 128 + 2
    (signal.SIGKILL, -signal.SIGKILL),  # no cleanup can run: the temporary has no name to leave
], ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGKILL"])
def test_cli_signal_during_a_write_leaves_no_temporary_and_no_file(signum, status, cat_path, tmp_path):
    target = tmp_path / "v.nc"
    process = subprocess.Popen([CNNVIS, "export", str(cat_path), "-o", str(target), *RESNET18,
                                "--layers", "all", "--top-k", "8"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline_at = time.monotonic() + 300
        while not _writing_into(process.pid, tmp_path) and time.monotonic() < deadline_at:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.001)
        process.send_signal(signum)  # the temporary file is open: the write is under way
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    assert os.listdir(tmp_path) == []


def test_api_sigterm_during_a_write_cleans_up_then_reaches_the_previous_handler(small_volume, tmp_path):
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        def write_and_get_terminated(temporary: str) -> None:
            Path(temporary).write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted at once by the exception the signal becomes

        started = time.monotonic()
        with pytest.raises(OutputError, match="writing was interrupted by SIGTERM: nothing was written"):
            atomic_write(tmp_path / "x.nc", write_and_get_terminated)
        assert time.monotonic() - started < 4
        assert received == [signal.SIGTERM]  # after the cleanup, the application's handler ran once
        assert signal.getsignal(signal.SIGTERM) is not None and os.listdir(tmp_path) == []
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_api_write_restores_the_signal_handlers_it_found(small_volume, tmp_path):
    def mine(signum: int, frame: object) -> None:
        pass

    saved = {s: signal.signal(s, mine) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        small_volume.to_netcdf(tmp_path / "x.nc")
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGHUP) is mine
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_api_write_from_a_worker_thread_works_without_touching_signals(small_volume, tmp_path):
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(small_volume.to_netcdf(tmp_path / "x.nc")))
    worker.start()
    worker.join(timeout=120)
    assert outcome == [tmp_path / "x.nc"]
    assert cnn_engine.read_netcdf(tmp_path / "x.nc").shape == small_volume.shape
    assert leftovers(tmp_path) == []


def test_plugin_writer_killed_by_sigterm_in_pvpython_leaves_no_temporary_and_no_file(cat_path, tmp_path):
    # pvpython installs ParaView's own SIGTERM handler, which Python cannot chain: only a temporary
    # that has no name while it is written keeps this clean.
    plugin = Path(__file__).resolve().parent.parent / "plugin" / "cnn_activations.py"
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "save.py"
    script.write_text(
        "from paraview.simple import *\n"
        f"LoadPlugin({str(plugin)!r}, ns=globals())\n"
        f"src = CNNActivationVolume(FileName={str(cat_path)!r}, Model='resnet18', Weights='random', LayerSet='all', TopK=8)\n"
        "src.UpdatePipeline()\n"
        "print('computed', flush=True)\n"
        f"SaveData({str(out / 'v.nc')!r}, proxy=src)\n"
    )
    env = dict(os.environ)
    env.pop("PV_PLUGIN_PATH", None)
    process = subprocess.Popen(["pvpython", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    try:
        deadline_at = time.monotonic() + 300
        while not _writing_into(process.pid, out) and time.monotonic() < deadline_at:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.001)
        assert _writing_into(process.pid, out), "the write never started"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
    finally:
        process.kill()
    assert os.listdir(out) == []
