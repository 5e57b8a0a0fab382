"""The forward runner: a sequence of images through the network in batches, each level's output
handed to whoever consumes it.

Images are decoded and fitted to the input grid on a worker thread one batch ahead of the
network (decoding overlaps computing); a batch holds images of one input size (with fit
``short-side`` images of other aspect ratios start a new batch). Consumers (the volume
builders, the set statistics) receive each level's output for the whole batch, (batch,
channels, rows, columns), as it is produced: memory holds one batch's layer outputs at a time,
never the whole set.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import torch

from .errors import CnnEngineError
from .images import LoadedImage, load_image
from .layers import LevelSpec
from .models import CnnModel, class_scores, settle_labels
from .preprocess import NetworkInput, Preprocessing, network_input

#: Largest automatic batch: beyond it a CPU gains nothing and memory grows.
MAX_AUTO_BATCH = 16

#: Called as ``on_error(path, error)`` for an image of the set that cannot be used.
OnError = Callable[[str, CnnEngineError], None]
#: Called as ``sink(level_index, output)`` with a level's output for the whole batch.
Sink = Callable[[int, torch.Tensor], None]


@dataclass
class Item:
    """One image of the set, decoded: ``position`` in the set, its true label (class index and
    the set's name for it, None when unknown), the file as loaded and the network input."""

    position: int
    label: int | None
    label_name: str | None
    loaded: LoadedImage
    net_in: NetworkInput

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the network input in pixels."""
        return tuple(int(v) for v in self.net_in.rgb.shape[:2])


def decoded_batches(image_set, positions: Sequence[int], preprocessing: Preprocessing, model: CnnModel,
                    batch_size: int, on_error: OnError) -> Iterator[list[Item]]:
    """The images at ``positions`` of ``image_set``, decoded, in batches of at most ``batch_size``
    images of one input size, in order. The next batch is decoded on a worker thread while the
    caller works on this one. An image that cannot be read goes to ``on_error`` (in order, from
    the caller's thread) and is left out."""
    chunks = [positions[i:i + batch_size] for i in range(0, len(positions), batch_size)]
    if not chunks:
        return

    def decode(chunk: Sequence[int]) -> list[Item | tuple[str, CnnEngineError]]:
        decoded: list[Item | tuple[str, CnnEngineError]] = []
        for position in chunk:
            path = str(image_set.paths[position])
            try:
                loaded = load_image(path)
                item = Item(position, image_set.labels[position], image_set.label_names[position], loaded,
                            network_input(loaded.image, preprocessing, model.mean, model.std))
            except CnnEngineError as exc:
                decoded.append((path, exc))
            else:
                decoded.append(item)
        return decoded

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnvis-decode") as pool:
        pending = pool.submit(decode, chunks[0])
        for following in chunks[1:] + [None]:
            decoded = pending.result()
            if following is not None:
                pending = pool.submit(decode, following)
            batch: list[Item] = []
            for entry in decoded:
                if isinstance(entry, tuple):
                    on_error(*entry)
                    continue
                if batch and entry.size != batch[0].size:
                    yield batch
                    batch = []
                batch.append(entry)
            if batch:
                yield batch


def forward(model: CnnModel, levels: Sequence[LevelSpec], items: Sequence[Item], sink: Sink) -> torch.Tensor:
    """Run ``items`` through the network as one batch, calling ``sink`` with each level's output
    (batch, channels, rows, columns); returns the class scores (batch, classes)."""
    x = torch.cat([item.net_in.tensor for item in items]).to(model.device)
    with torch.inference_mode():
        output = model.instrumented(levels)(x, sink)
    logits = class_scores(output)
    if isinstance(logits, torch.Tensor) and logits.dim() == 2:
        settle_labels(model, int(logits.shape[1]))  # a plain module's labels, from its output
    return logits


def default_batch_size(model: CnnModel, levels: Sequence[LevelSpec], size: tuple[int, int], top_k: int,
                       available: int | None) -> int:
    """Images per batch: up to MAX_AUTO_BATCH, fewer when a quarter of the ``available`` memory
    (bytes; None: unknown) cannot hold that many images' layer outputs and volumes.

    Per image, every operation's output at this input size is counted (the catalog's shapes at
    the reference size, scaled by area: an upper bound of what a forward pass holds) plus the
    volume (top_k x levels x height x width float32) the builder fills.
    """
    from .layers import REFERENCE_SIZE

    area = size[0] * size[1] / float(REFERENCE_SIZE * REFERENCE_SIZE)
    outputs = 0.0
    for shape in model.catalog.reference_shapes.values():
        if shape is not None and len(shape) >= 2:
            count = 1
            for v in shape[1:]:
                count *= int(v)
            outputs += count * (area if len(shape) == 4 else 1.0)
    per_image = 4 * (outputs + top_k * len(levels) * size[0] * size[1])
    if available is None:
        return MAX_AUTO_BATCH
    return int(max(1, min(MAX_AUTO_BATCH, (available // 4) // max(per_image, 1))))


T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterable[T], size: int) -> Iterator[T]:
    """``items`` in order, produced on a worker thread up to ``size`` ahead of the caller.

    For a consumer that must stay on the caller's thread (a file written as the volumes come)
    while the next ones are computed. An exception in ``items`` is raised here, in order; when
    the caller stops early (or fails), the worker stops at its next item.
    """
    waiting: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def produce() -> None:
        try:
            deliver()
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator stopped early releases what it holds (its decoding thread)

    def deliver() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        waiting.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            outcome = (_DONE, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            outcome = (_DONE, exc)
        while not stop.is_set():
            try:
                waiting.put(outcome, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=produce, name="cnnvis-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = waiting.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()
