"""Feature probes: time and peak memory of probing every channel of ResNet-50's blocks.

    .venv/bin/python benchmarks/bench_probes.py [--input-size 224] [--batch-size N]

ResNet-50 (random weights: time and memory do not depend on them), layer set ``blocks``, the
probe set (gratings and colour fields, generated on the fly, plus the blank):

1. time of :func:`cnn_engine.probe_channels`, the number of stimuli, and the bare batched
   forward of the same stimuli (already made and normalised, no capture) for comparison;
2. peak memory (max RSS growth, ``/proc/self/clear_refs`` resets the high-water mark once the
   model is built) of the probes, and of one batch through the forward runner with every level
   captured and dropped, and of every stimulus through that runner, each in a fresh process;
   the ratios, with glibc's default allocator and with its mmap threshold fixed (see
   :func:`peak_rss`). Target: memory bounded by one batch (the probes add the responses, 4
   bytes per channel and stimulus: 17 MB here, and what the allocator keeps between batches).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn_engine  # noqa: E402
from cnn_engine.compute import available_memory  # noqa: E402
from cnn_engine.probes import STIMULI, _item  # noqa: E402
from cnn_engine.runner import default_batch_size  # noqa: E402


def batch_size_for(model, size: int) -> int:
    """The batch size probe_channels picks by itself."""
    return default_batch_size(model, model.levels("blocks"), (size, size), 0, available_memory())


def bare_forward(model, size: int, batch: int) -> float:
    """Seconds for the network alone on every stimulus, made beforehand, in batches."""
    tensors = [_item(k, size, model).net_in.tensor for k in range(-1, STIMULI)]
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(tensors), batch):
            model.module(torch.cat(tensors[i:i + batch]))
    return time.perf_counter() - start


def peak_rss(mode: str, size: int, batch: int, fixed_threshold: bool = False) -> int:
    """Peak RSS growth (bytes) in a fresh process: ``probe`` runs probe_channels; ``batch`` runs
    one batch of stimuli through the forward runner, every blocks level captured and dropped;
    ``runner`` the same for every stimulus, batch after batch (what the allocator keeps between
    batches counts there as in the probes). ``fixed_threshold``: glibc's mmap threshold fixed at
    1 MiB (``MALLOC_MMAP_THRESHOLD_``), so that freed layer outputs go back to the system at once
    instead of staying in a heap that the default, growing threshold fragments."""
    code = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
import cnn_engine
from bench_sets import status_bytes
from cnn_engine.probes import _item
from cnn_engine.runner import forward
model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
levels = model.levels("blocks")
items = [_item(k, {size}, model) for k in range({batch})] if {mode!r} == "batch" else None
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
base = status_bytes("VmRSS")
if {mode!r} == "probe":
    cnn_engine.probe_channels(model, "blocks", input_size={size}, batch_size={batch})
elif {mode!r} == "runner":
    for start in range(-1, {STIMULI}, {batch}):
        stop = min(start + {batch}, {STIMULI})
        forward(model, levels, [_item(k, {size}, model) for k in range(start, stop)], lambda index, output: None)
else:
    forward(model, levels, items, lambda index, output: None)
print(status_bytes("VmHWM") - base)
"""
    env = dict(os.environ, **({"MALLOC_MMAP_THRESHOLD_": str(2**20)} if fixed_threshold else {}))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return int(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=None, help="default: what probe_channels picks")
    args = parser.parse_args()
    model = cnn_engine.load_model("resnet50", weights="random", device="cpu")
    size = args.input_size
    batch = args.batch_size or batch_size_for(model, size)
    bare_forward(model, size, batch)  # warm-up: allocator, thread pool
    start = time.perf_counter()
    probes = cnn_engine.probe_channels(model, "blocks", input_size=size, batch_size=batch)
    elapsed = time.perf_counter() - start
    bare = bare_forward(model, size, batch)
    channels = sum(probes.channel_counts)
    print(f"ResNet-50 (random weights), blocks: {len(probes.levels)} levels, {channels} channels; "
          f"{size} px, batch {batch}, {torch.get_num_threads()} threads")
    print(f"stimuli: {STIMULI} + 1 blank = {STIMULI + 1} images")
    print(f"probe_channels: {elapsed:.1f} s ({1000 * elapsed / (STIMULI + 1):.0f} ms a stimulus); "
          f"bare batched forward of the same stimuli: {bare:.1f} s; ratio {elapsed / bare:.2f}")
    for fixed, allocator in ((False, "default allocator"), (True, "mmap threshold fixed at 1 MiB")):
        probe_peak, batch_peak, runner_peak = (peak_rss(mode, size, batch, fixed) for mode in ("probe", "batch", "runner"))
        print(f"peak memory growth ({allocator}): probes {probe_peak / 2**20:.0f} MiB; one batch of {batch} through "
              f"the runner {batch_peak / 2**20:.0f} MiB, ratio {probe_peak / batch_peak:.2f}; every stimulus through "
              f"the runner (no probes) {runner_peak / 2**20:.0f} MiB, ratio {probe_peak / runner_peak:.2f}")


if __name__ == "__main__":
    main()
