"""One forward and backward pass that judges every level by what it does for a target class.

Used by :func:`cnn_engine.compute_volume` for ``rank_by="effect"`` and ``evidence="layercam"``
(and Grad-CAM's layer). The network runs once with gradients on; every level's output is kept
(autograd keeps it anyway for the backward pass), then:

* the ``effect`` of channel ``c`` of a level with output ``A`` is
  ``sum over cells (d log softmax(z)_t / d A_c) * A_c``: the first-order change of the target's
  log-probability if the channel were switched off (a Taylor estimate of the ablation drop,
  Molchanov et al. 2017). The log-probability rather than the logit ``z_t``: a channel that
  raises every class's logit alike leaves the decision as it is and scores about 0;
* the ``layercam`` map of a level is ``ReLU(sum_c ReLU(d z_t / d A_c) * A_c)`` per cell
  (LayerCAM, Jiang et al. 2021: positive gradients weight each cell, so it works at every depth,
  not only the last layer), from the target's logit as in the paper.

Each needs one backward pass from the class score to the shallowest level.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .errors import CnnEngineError
from .models import class_scores


@dataclass
class GradientPass:
    """What the pass found, per captured output in sink order.

    ``outputs`` are the (channels, height, width) layer outputs, detached; ``effect`` the
    (channels,) float32 effect scores and ``layercam`` the (height, width) float32 maps on each
    layer's own grid, None when not asked for; ``logits`` (1, classes) detached.
    """

    logits: torch.Tensor
    outputs: list[torch.Tensor]
    effect: list[torch.Tensor] | None
    layercam: list[torch.Tensor] | None


def gradient_pass(
    graph: Callable[[torch.Tensor, Callable[[int, torch.Tensor], None]], object],
    module: nn.Module,
    x: torch.Tensor,
    count: int,
    choose_target: Callable[[torch.Tensor], int],
    effect: bool,
    layercam: bool,
    extra: Callable[[list[torch.Tensor], torch.Tensor, int], None] | None = None,
) -> GradientPass:
    """Run ``graph`` (an instrumented model, see :func:`cnn_engine.graph.instrument`) on ``x``
    (1, 3, H, W) with gradients, keeping the ``count`` outputs its sink receives.

    ``choose_target(logits)`` gives the class index. ``extra(outputs, logits, target)``, if
    given, runs last, on the graph still attached (Grad-CAM's own backward pass). In-place
    activations of ``module`` are switched off for the pass (they would overwrite kept outputs).
    """
    outputs: list[torch.Tensor | None] = [None] * count

    def keep(index: int, value: torch.Tensor) -> None:
        outputs[index] = value

    with torch.enable_grad(), _not_in_place(module):
        logits = class_scores(graph(x.detach().clone().requires_grad_(True), keep))
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise CnnEngineError("ranking by effect and LayerCAM need a model returning class scores (batch, classes)")
        missing = [i for i, v in enumerate(outputs) if v is None]
        if missing:
            raise CnnEngineError(f"the model did not produce the outputs of levels {missing}")
        target = choose_target(logits.detach())
        kept = [v for v in outputs if v is not None]
        effect_scores = layercam_maps = None
        if effect:
            log_probability = torch.log_softmax(logits[0].float(), dim=0)[target]
            grads = _grads(log_probability, kept, retain=layercam or extra is not None)
            effect_scores = [(g[0] * v[0]).sum(dim=(1, 2)).detach().float() for g, v in zip(grads, kept)]
        if layercam:
            grads = _grads(logits[0, target], kept, retain=extra is not None)
            layercam_maps = [torch.relu((torch.relu(g[0]) * v[0]).sum(dim=0)).detach().float() for g, v in zip(grads, kept)]
        if extra is not None:
            extra(kept, logits, target)
    return GradientPass(
        logits=logits.detach(),
        outputs=[v[0].detach() for v in kept],
        effect=effect_scores,
        layercam=layercam_maps,
    )


def _grads(score: torch.Tensor, values: Sequence[torch.Tensor], retain: bool) -> list[torch.Tensor]:
    attached = [v for v in values if v.requires_grad]
    found = iter(torch.autograd.grad(score, attached, retain_graph=retain, allow_unused=True)) if attached else iter(())
    grads = []
    for v in values:
        g = next(found) if v.requires_grad else None
        grads.append(torch.zeros_like(v) if g is None else g)  # a level the score does not depend on
    return grads


def switch_off_in_place(module: nn.Module) -> list[nn.Module]:
    """Switch off the in-place activations of ``module`` (they would overwrite outputs a backward
    pass needs); returns the modules switched, for :func:`restore_in_place`."""
    switched = [m for m in module.modules() if getattr(m, "inplace", False) is True]
    for m in switched:
        m.inplace = False
    return switched


def restore_in_place(switched: Sequence[nn.Module]) -> None:
    for m in switched:
        m.inplace = True


@contextlib.contextmanager
def _not_in_place(module: nn.Module) -> Iterator[None]:
    switched = switch_off_in_place(module)
    try:
        yield
    finally:
        restore_in_place(switched)
