"""The model-randomisation sanity check of an evidence map (Adebayo et al. 2018).

Adebayo, Gilmer, Muelly, Goodfellow, Hardt and Kim, "Sanity Checks for Saliency Maps" (NeurIPS
2018): a map meant to show what a *trained* model uses must change when the model's learned
weights are replaced by random ones. A map that stays much the same shows the image (edges,
contrast) or the architecture (padding, centre bias), not what the model learned, however
convincing it looks.

:func:`sanity_check` makes the same evidence map with :func:`cnn_engine.compute_volume` (same
method, settings, target class and preprocessing) with the model as it is and with ``draws``
copies whose weights are all re-initialised (:func:`randomised_copy`, seeds ``seed``,
``seed + 1``, ...; the user's model is never touched), and compares each randomised map with the
trained one by Spearman's rank correlation ``rho`` over all pixels (ties get their average rank).

**Several draws.** One random network is one sample: with EfficientNet-Lite0 on the cat, CAM's
``rho`` was 0.05, 0.56 and 0.03 for seeds 0, 1 and 2. The verdict is on the mean of ``|rho|``
over the draws (3 by default); a randomised map that is flat (no evidence anywhere) has no order
left and counts as 0.

**Threshold.** The map passes when that mean is below :data:`RHO_THRESHOLD` (0.5). At
``|rho| = 0.5`` the randomised map's ranking still accounts for a quarter (``rho**2``) of the
variance of the trained map's ranking: more than that and the map mostly shows what any network
of this shape would show on this image. The absolute value is taken because an inverted map
survives randomisation just as much. Spearman, not Pearson: only the order of the pixels is
compared, as the deletion/insertion scores use it (see :mod:`cnn_engine.faithfulness`). A trained
map that is flat cannot be judged. Measured values for the sample images are in the README
("How far to trust a map").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from .errors import CnnEngineError
from .evidence import EvidenceSettings, Target
from .images import ImageSource
from .layers import LayerSelection
from .models import CnnModel

#: A map passes when the mean absolute Spearman correlation with its randomised twins is below this.
RHO_THRESHOLD = 0.5
#: Randomised copies compared by default.
DRAWS = 3


@dataclass(frozen=True)
class SanityCheck:
    """The outcome of :func:`sanity_check`.

    ``rhos`` are Spearman's rank correlations between the model's map and each randomised copy's
    (NaN where the randomised map is flat); ``abs_rho`` is the mean of their absolute values (a
    flat randomised map counting 0), the number judged; ``passed`` is True when ``abs_rho <
    threshold``, False when not, None when the model's own map is flat (nothing to judge);
    ``verdict`` says so in plain words. ``trained_map`` is the model's (height, width) map,
    ``randomised_maps`` the copies'; ``randomised_weights`` names the copies' weights
    (``re-initialised (seed 0) from packaged``, ...).
    """

    method: str
    abs_rho: float
    rhos: tuple[float, ...]
    threshold: float
    passed: bool | None
    verdict: str
    target_index: int
    target_label: str
    randomised_weights: tuple[str, ...]
    trained_map: np.ndarray = field(repr=False)
    randomised_maps: tuple[np.ndarray, ...] = field(repr=False)

    def summary(self) -> list[str]:
        """The check in plain words: what was compared, the correlations, and whether the map passed."""
        rhos = ", ".join("flat" if np.isnan(r) else f"{r:.3f}" for r in self.rhos)
        return [
            f"sanity check (model randomisation, Adebayo et al. 2018) of {self.method} for {self.target_label} "
            f"(class {self.target_index}): Spearman rho between the model's map and those of {len(self.rhos)} "
            f"copies with all weights re-initialised: {rhos}; mean |rho| {self.abs_rho:.3f}",
            f"  {self.verdict}",
        ]


def sanity_check(
    model: CnnModel | nn.Module,
    image: ImageSource,
    evidence: str | EvidenceSettings = "gradcam",
    target: Target = None,
    seed: int = 0,
    draws: int = DRAWS,
    threshold: float = RHO_THRESHOLD,
    reference: "object | None" = None,
    layers: LayerSelection | None = None,
    input_size: int = 224,
    fit: str = "short-side",
    max_side: int = 1024,
    interpolation: str = "nearest",
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    randomised: Sequence[CnnModel] | None = None,
) -> SanityCheck:
    """Compare ``model``'s evidence map on ``image`` with those of randomised copies (see the
    module docstring).

    ``evidence`` is a method name or :class:`EvidenceSettings` (layer, patch, occluder...);
    ``target`` a class index or label (default the model's top-1 class; the randomised copies
    explain the same class). ``draws`` copies, seeded ``seed``, ``seed + 1``, ...; ``randomised``:
    copies made by :func:`randomised_copy` to reuse over several images (then ``seed`` and
    ``draws`` are not used). ``reference``: an :class:`ActivationVolume` already computed with
    this model, image and evidence settings; its map and target are used and its preprocessing,
    layers and interpolation repeated, so only the randomised maps are computed. ``layers``
    matters for ``layercam`` only (the deepest level's map; default ``blocks``); the other
    methods run on the input level alone. ``input_size``, ``fit``, ``max_side``,
    ``interpolation``, ``labels``, ``mean``, ``std`` as for :func:`cnn_engine.compute_volume`.
    """
    from .compute import _as_model, compute_volume  # one cache of wrapped plain modules

    if not 0 < threshold <= 1:
        raise CnnEngineError(f"the sanity threshold must be in (0, 1], not {threshold}")
    if randomised is None and (not isinstance(draws, int) or draws < 1):
        raise CnnEngineError(f"draws must be a whole number of at least 1, not {draws!r}")
    settings = EvidenceSettings(evidence, target) if isinstance(evidence, str) else evidence
    if target is not None and not isinstance(evidence, str):
        settings = replace(settings, target=target)
    model = _as_model(model, labels, mean, std)
    options = dict(input_size=input_size, fit=fit, max_side=max_side, interpolation=interpolation,
                   layers=layers if layers is not None else ("blocks" if settings.method == "layercam" else ["input"]))
    if reference is None:
        reference = compute_volume(model, image, top_k=1, evidence=settings, **options)
    else:
        if reference.evidence is None or reference.evidence_info is None:
            raise CnnEngineError("the reference volume has no evidence map: compute it with an evidence method")
        if reference.evidence_info.method != settings.method:
            raise CnnEngineError(f"the reference volume holds a {reference.evidence_info.method} map, not "
                                 f"{settings.method}: give the method it was made with")
        prov = reference.provenance
        options = dict(input_size=prov.preprocessing["size"], fit=prov.preprocessing["fit"],
                       max_side=prov.preprocessing["max_side"], interpolation=prov.interpolation,
                       layers=prov.layers if settings.method == "layercam" else ["input"])
    info = reference.evidence_info
    copies = list(randomised) if randomised is not None else [randomised_copy(model, seed + i) for i in range(draws)]
    same_target = replace(settings, target=info.target_index)
    trained_map = np.asarray(reference.evidence, dtype=np.float64)
    randomised_maps = tuple(
        np.asarray(compute_volume(copy_, image, top_k=1, evidence=same_target, **options).evidence, dtype=np.float64)
        for copy_ in copies
    )
    rhos = tuple(spearman(trained_map, other) for other in randomised_maps)
    abs_rho = float(np.mean([0.0 if np.isnan(r) else abs(r) for r in rhos]))
    passed, verdict = judge(abs_rho, trained_map, threshold)
    return SanityCheck(
        method=settings.method,
        abs_rho=abs_rho,
        rhos=rhos,
        threshold=threshold,
        passed=passed,
        verdict=verdict,
        target_index=info.target_index,
        target_label=info.target_label,
        randomised_weights=tuple(c.weights for c in copies),
        trained_map=trained_map,
        randomised_maps=randomised_maps,
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally shaped maps: the Pearson correlation of their
    ranks (ties share their average rank). NaN when either map is constant."""
    if a.shape != b.shape:
        raise CnnEngineError(f"maps of different shapes cannot be compared: {a.shape} and {b.shape}")
    ranks_a, ranks_b = rankdata(a.ravel()), rankdata(b.ravel())
    if np.ptp(ranks_a) == 0 or np.ptp(ranks_b) == 0:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def judge(abs_rho: float, trained_map: np.ndarray, threshold: float) -> tuple[bool | None, str]:
    """(passed, verdict in plain words) for a mean absolute rank correlation ``abs_rho`` (see the
    module docstring)."""
    if np.ptp(trained_map) == 0:
        return None, ("cannot judge: the model's own map is flat (no evidence anywhere), so there is "
                      "nothing to compare")
    if abs_rho < threshold:
        return True, (f"passed: the map changed substantially when the weights were randomised (mean |rho| "
                      f"{abs_rho:.2f} < {threshold:g}), so it depends on what the model learned")
    return False, (f"FAILED: the map hardly changed when the weights were randomised (mean |rho| {abs_rho:.2f} >= "
                   f"{threshold:g}): it shows the image or the architecture more than what the model learned; "
                   "do not read it as the model's reasons")


def randomised_copy(model: CnnModel, seed: int = 0) -> CnnModel:
    """A copy of ``model`` with every weight re-initialised, seeded; ``model`` is not modified.

    Convolution and linear weights are drawn He-normal (Kaiming, fan in: standard deviation
    sqrt(2 / fan_in)), their biases set to 0; every other layer with a ``reset_parameters``
    method gets it (batch norms: weight 1, bias 0, running statistics reset); a parameter
    neither reaches (a bare ``nn.Parameter``, e.g. a layer scale) is drawn from a normal
    distribution with its trained mean and standard deviation. Why not PyTorch's default
    (Kaiming-uniform with a = sqrt(5), variance 1 / (3 fan_in)): it shrinks the signal at every
    layer, and with EfficientNet-Lite0 the randomised logits then differed by 2e-9 between
    images: a network that does not see its input, against which any map "passes". He-normal
    keeps the activations' scale through ReLU layers (logits differing by about 0.5 between the
    sample images). The re-initialisation runs on the CPU under ``torch.manual_seed(seed)`` (the
    caller's random state is kept), so the copy is the same on every device.
    """
    module = copy.deepcopy(model.module).cpu()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        reached: set[int] = set()
        for layer in module.modules():
            if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
            elif callable(getattr(layer, "reset_parameters", None)):
                layer.reset_parameters()
            else:
                continue
            reached.update(id(p) for p in layer.parameters(recurse=False))
        for parameter in module.parameters():
            if id(parameter) not in reached:
                std = float(parameter.std()) if parameter.numel() > 1 else 0.0
                parameter.normal_(float(parameter.mean()), std)
    return CnnModel(
        name=model.name,
        weights=f"re-initialised (seed {seed}) from {model.weights}",
        trained=False,
        module=module.eval().to(model.device),
        device=model.device,
        mean=model.mean,
        std=model.std,
        categories=model.categories,
        labels=model.labels,
        # The layer catalog and the receptive-field geometry describe the architecture, which the
        # copy shares: reused, they save a trace and a probe pass per copy (seconds each). The
        # traced graphs (_instrumented) hold the original's layers and are never shared.
        _catalog=model.catalog,
        _geometry=model._geometry,
    )
