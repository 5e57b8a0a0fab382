"""Grad-CAM: feature maps weighted by the spatial mean of the class score's gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnEngineError
from ..gradients import restore_in_place, switch_off_in_place
from ..models import class_scores
from . import Target, resolve_target

if TYPE_CHECKING:
    from ..models import CnnModel


def grad_cam(features: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c mean_hw(d score / d A_c) * A_c) on the layer's own grid.

    ``features`` is the (1, C, h, w) output of the chosen layer, still attached to the graph
    that produced ``score`` (the target class's logit). Only the part of the backward pass
    between the score and that layer runs. Returns (h, w) float32; the caller draws it on the
    input grid with the layer's geometry (see :mod:`cnn_engine.resample`).
    """
    (gradient,) = torch.autograd.grad(score, features)
    weights = gradient[0].mean(dim=(1, 2))
    with torch.no_grad():
        return F.relu(torch.einsum("c,chw->hw", weights, features[0]))


@dataclass
class GradCamPass:
    """What :func:`grad_cam_pass` found: the (1, classes) class scores (detached), the target
    class index and the (h, w) float32 Grad-CAM map on the layer's own grid."""

    logits: torch.Tensor
    target: int
    map: torch.Tensor


def grad_cam_pass(
    graph: Callable[[torch.Tensor, Callable[[int, torch.Tensor], None]], object],
    module: nn.Module,
    x: torch.Tensor,
    index: int,
    choose_target: Callable[[torch.Tensor], int],
    sink: Callable[[int, torch.Tensor], None] | None = None,
) -> GradCamPass:
    """Run an instrumented model once (see :func:`cnn_engine.graph.instrument`) on ``x``
    (1, 3, H, W) and make the Grad-CAM map of the output its sink receives as ``index``.

    Autograd records from that output on only: Grad-CAM needs the class score's gradient at the
    layer and nothing below it, so the network up to the layer runs as in inference, saving no
    tensors. At ResNet-50's layer4.2 on the CPU that made one map cost about one inference forward
    pass plus 3%, 0.87 to 0.96x torch-cam's time with 2 threads (which records the whole forward
    pass) and 0.73 to 0.87x with one (benchmarks/bench_peers.py). The other outputs go to
    ``sink(i, value)`` as they are produced (those after the layer still attached: detach them
    to keep them). ``choose_target(logits)`` gives the class index. In-place activations of
    ``module`` are switched off from the layer on, so the layer's output reaches the backward pass
    as it was produced. A model that changes it in place by a function call rather than a module
    (DenseNet's ``F.relu(x, inplace=True)``) cannot run this way: it runs again with gradients
    throughout (:func:`cnn_engine.gradients.gradient_pass`), and the sink sees the outputs a
    second time.
    """
    found: dict[str, torch.Tensor] = {}
    switched: list[nn.Module] = []

    def capture(i: int, value: torch.Tensor) -> None:
        if i != index:
            if sink is not None:
                sink(i, value)
            return
        torch.set_grad_enabled(True)  # from here on; the no_grad block below restores the caller's mode
        found["features"] = value.requires_grad_(True)
        switched.extend(switch_off_in_place(module))

    try:
        with torch.no_grad():
            logits = graph(x.detach(), capture)
    except RuntimeError as error:
        if "in-place operation" not in str(error):  # the layer's output, now a leaf, changed in place
            raise
        logits = None
    finally:
        restore_in_place(switched)
    if logits is None:
        return _with_gradients_throughout(graph, module, x, index, choose_target, sink)
    logits = class_scores(logits)
    if "features" not in found:
        raise CnnEngineError(f"the model did not produce the output of level {index}, the Grad-CAM layer")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise CnnEngineError("Grad-CAM needs a model returning class scores (batch, classes)")
    target = choose_target(logits.detach())
    with torch.enable_grad():  # the caller may be in no_grad: the score must stay attached
        values = grad_cam(found["features"], logits[0, target])
    return GradCamPass(logits=logits.detach(), target=target, map=values)


def _with_gradients_throughout(graph, module, x, index, choose_target, sink) -> GradCamPass:
    from ..gradients import gradient_pass  # imported here: gradients.py is the larger, general pass

    count = max(index + 1, len(_sink_calls(graph)))
    found: dict[str, object] = {}

    def keep(outputs: list[torch.Tensor], logits: torch.Tensor, target: int) -> None:
        found["map"], found["target"] = grad_cam(outputs[index], logits[0, target]), target

    passed = gradient_pass(graph, module, x, count, choose_target, effect=False, layercam=False, extra=keep)
    if sink is not None:
        for i, value in enumerate(passed.outputs):
            if i != index:
                sink(i, value[None])
    return GradCamPass(logits=passed.logits, target=int(found["target"]), map=found["map"])


def _sink_calls(graph: object) -> list[object]:
    """The sink calls :func:`cnn_engine.graph.instrument` put in ``graph``: one per output."""
    return [n for n in graph.graph.nodes if n.op == "call_method" and n.target == "__call__"]


def grad_cam_map(model: "CnnModel", x: torch.Tensor, layer: str | None = None, target: Target = None) -> torch.Tensor:
    """Grad-CAM of class ``target`` on ``layer`` for one network input, without a volume.

    ``x`` is the normalised (1, 3, H, W) input (see :func:`cnn_engine.preprocess.network_input`);
    ``layer`` a level name (default: the last of the ``blocks`` set, as ``compute_volume``
    uses); ``target`` an index or label (default: the top-1 class). It runs
    :func:`grad_cam_pass` on the model instrumented for that one level. Returns the (h, w)
    float32 map on the layer's own grid, not drawn on the input.
    """
    level = model.levels([layer or model.levels("blocks")[-1].name])[0]
    passed = grad_cam_pass(model.instrumented([level]), model.module, x, 0,
                           lambda logits: resolve_target(target, model.categories, int(logits[0].argmax()), int(logits.shape[1])))
    return passed.map
