"""How far to trust an evidence map: deletion and insertion scores (RISE protocol).

A saliency map claims that some pixels matter more for a class than others. The RISE protocol
(Petsiuk, Das and Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", section 4.1) tests that claim with the model itself:

**Deletion.** Pixels are removed from the network input, most salient first, in ``steps`` equal
steps (after step ``k`` of ``n``, the ``k/n`` most salient pixels are gone; a removed pixel takes
the *baseline*'s value, see below), and the target class's softmax probability is measured after
each step. If the map is right, the probability falls fast: a **lower** deletion score is better.

**Insertion.** The reverse: start from the baseline and put the image's pixels back, most salient
first. If the map is right, the probability rises fast: a **higher** insertion score is better.

Each score is the area under its curve: probability over the fraction of pixels removed or
inserted, 0 to 1, at ``steps + 1`` points (the trapezoid rule), so it lies in [0, 1]. The deletion
curve starts at the clean image's probability and ends at the baseline's; the insertion curve the
other way round.

**Baselines.** ``blur`` (default): the image under a strong Gaussian blur (sigma
:data:`BLUR_SIGMA` of the short side, about 14 px at 224 px; the class is no longer recognisable,
while colours and coarse layout stay, so the curves do not measure the network's reaction to a
strange flat colour). ``mean``: the normalisation's mean colour, i.e. 0 in the normalised input.
(RISE's reference code deletes to zeros of the normalised input, this mean colour, and inserts
from a milder blur; here one baseline serves both curves, so they end where the other starts.)

**Order.** Pixels are taken in order of decreasing saliency; ties are broken by raster position
(row by row from the top left), so the scores are deterministic for any map, flat ones included.
Only the *order* matters: any increasing transformation of a map gives the same scores.

**Comparisons.** A score means little alone (it depends on the image, the class and the
baseline), so two reference maps run through the same protocol: ``random``, a uniform random map
(seeded: ``seed``), which any useful map must beat; and ``prior``, a centred Gaussian (the
object-in-the-middle guess photographs favour; only its order, by distance from the centre,
matters), which a map must beat to show more than "photographers centre their subject".

The maps live on the network-input grid, the volume's X/Y grid: ``saliency`` has the shape
(height, width) of the image after preprocessing (``vol.evidence`` has it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch import nn

from .errors import CnnEngineError
from .evidence import Target, resolve_target
from .images import ImageSource, load_image
from .models import CnnModel, class_scores, settle_labels
from .preprocess import Preprocessing, network_input

BASELINES = ("blur", "mean")
#: Gaussian blur sigma of the ``blur`` baseline, as a fraction of the input's short side.
BLUR_SIGMA = 1 / 16
#: Forward passes per batch (as occlusion's default).
DEFAULT_BATCH = 16

#: Called as ``progress(done, total)`` in forward passes (images) while the curves are measured.
Progress = Callable[[int, int], None]


class FaithfulnessError(CnnEngineError):
    """A faithfulness score cannot be computed as asked (map shape, baseline, steps)."""


@dataclass(frozen=True)
class Scores:
    """Deletion and insertion scores of one map, with their curves.

    ``deletion``/``insertion`` are areas under the curves (probability x fraction, in [0, 1]);
    ``deletion_curve``/``insertion_curve`` are the target probabilities at
    :attr:`Faithfulness.fractions` (``steps + 1`` values).
    """

    deletion: float
    insertion: float
    deletion_curve: np.ndarray = field(repr=False)
    insertion_curve: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion scores of a saliency map and of two reference maps.

    ``deletion`` (lower is better) and ``insertion`` (higher is better) score the map given;
    ``map`` holds them with their curves, ``random`` and ``prior`` the same for a seeded uniform
    random map and a centred Gaussian. ``fractions`` are the curves' x values (0 to 1), the
    probabilities are the softmax of ``target_index`` (``target_label``); ``clean_probability``
    is the unaltered image's, ``baseline_probability`` the baseline's.
    """

    deletion: float
    insertion: float
    map: Scores
    random: Scores
    prior: Scores
    fractions: np.ndarray = field(repr=False)
    target_index: int
    target_label: str
    clean_probability: float
    baseline_probability: float
    baseline: str
    steps: int
    seed: int

    def summary(self) -> list[str]:
        """The scores and their comparison with the random and prior maps, in plain words."""
        lines = [
            f"faithfulness (RISE deletion/insertion, {self.steps} steps, {self.baseline} baseline) for "
            f"{self.target_label} (class {self.target_index}, probability {self.clean_probability:.3f}; "
            f"baseline {self.baseline_probability:.3f}):",
            f"  deletion AUC  {self.deletion:.3f}  (lower is better; random map {self.random.deletion:.3f}, "
            f"centred prior {self.prior.deletion:.3f})",
            f"  insertion AUC {self.insertion:.3f}  (higher is better; random map {self.random.insertion:.3f}, "
            f"centred prior {self.prior.insertion:.3f})",
        ]
        for name, reference in (("a random map", self.random), ("the centred prior", self.prior)):
            lines.append(f"  against {name}: {self._comparison(reference)}")
        return lines

    def _comparison(self, reference: Scores) -> str:
        deletion = self.deletion < reference.deletion
        insertion = self.insertion > reference.insertion
        if deletion and insertion:
            return "better on deletion and insertion"
        if not deletion and not insertion:
            return "no better on either score: the map does not say more than this reference"
        return "better on deletion only" if deletion else "better on insertion only"


def faithfulness(
    model: CnnModel | nn.Module,
    image: ImageSource,
    saliency: "np.ndarray | torch.Tensor | object",
    target: Target = None,
    baseline: str = "blur",
    steps: int = 50,
    batch: int = DEFAULT_BATCH,
    seed: int = 0,
    progress: Progress | None = None,
    input_size: int = 224,
    fit: str = "short-side",
    max_side: int = 1024,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    references_from: Faithfulness | None = None,
) -> Faithfulness:
    """Deletion and insertion scores of ``saliency`` for ``model`` on ``image`` (see the module
    docstring for the protocol).

    ``image`` is preprocessed exactly as :func:`cnn_engine.compute_volume` does with the same
    ``input_size``, ``fit`` and ``max_side``; ``saliency`` is a (height, width) map on that grid
    (higher = more important), or an :class:`ActivationVolume` with an evidence map (then its
    picture must be this image's network input, and ``target`` defaults to its evidence target).
    ``target`` is a class index or label, default the top-1 class of the clean image. ``steps``
    equal steps per curve; ``batch`` images per forward pass; ``seed`` makes the random map;
    ``progress(done, total)`` counts forward passes. ``labels``/``mean``/``std`` are for a plain
    ``nn.Module``, as in :func:`cnn_engine.compute_volume`. ``references_from``: an earlier
    result for the same model, image, target, baseline, steps and seed (another method's map),
    whose random and prior scores are taken instead of measured again (a third of the cost);
    a result that does not match is an error. Lower deletion and higher insertion are better.
    """
    from .compute import _as_model  # one cache of wrapped plain modules, shared with compute_volume

    if baseline not in BASELINES:
        raise FaithfulnessError(f"unknown baseline {baseline!r}: use one of {', '.join(BASELINES)}")
    if not isinstance(steps, int) or steps < 1:
        raise FaithfulnessError(f"steps must be a whole number of at least 1, not {steps!r}")
    if not isinstance(batch, int) or batch < 1:
        raise FaithfulnessError(f"batch must be a whole number of at least 1, not {batch!r}")
    model = _as_model(model, labels, mean, std)
    net_in = network_input(load_image(image).image, Preprocessing(fit=fit, size=input_size, max_side=max_side),
                           model.mean, model.std)
    values, target = _saliency_values(saliency, net_in.rgb, target)
    x = net_in.tensor.to(model.device)
    fill = baseline_image(x, baseline)

    with torch.inference_mode():
        clean_logits = _class_scores(model.module(torch.cat([x, fill])))
    settle_labels(model, int(clean_logits.shape[1]))
    target_index = resolve_target(target, model.categories, int(clean_logits[0].argmax()), int(clean_logits.shape[1]))
    clean_p, baseline_p = torch.softmax(clean_logits.float(), dim=1)[:, target_index].double().cpu().tolist()

    height, width = values.shape
    maps = [values]
    if references_from is None:
        maps += [random_map((height, width), seed), prior_map((height, width))]
    else:
        _check_references(references_from, target_index, baseline, steps, seed, clean_p, baseline_p)
    counter = _Counter(progress, len(maps) * 2 * (steps - 1))
    scored = [
        _score(model.module, x, fill, pixel_order(m), target_index, steps, batch, clean_p, baseline_p, counter)
        for m in maps
    ]
    if references_from is not None:
        scored += [references_from.random, references_from.prior]
    return Faithfulness(
        deletion=scored[0].deletion,
        insertion=scored[0].insertion,
        map=scored[0],
        random=scored[1],
        prior=scored[2],
        fractions=np.arange(steps + 1, dtype=np.float64) / steps,
        target_index=target_index,
        target_label=model.label(target_index),
        clean_probability=clean_p,
        baseline_probability=baseline_p,
        baseline=baseline,
        steps=steps,
        seed=seed,
    )


def baseline_image(x: torch.Tensor, baseline: str) -> torch.Tensor:
    """The baseline for the normalised (1, 3, H, W) input ``x``: ``mean`` is zeros (the mean
    colour after normalisation), ``blur`` is ``x`` under a Gaussian of sigma :data:`BLUR_SIGMA`
    of the short side (kernel +-3 sigma, reflected at the borders)."""
    if baseline == "mean":
        return torch.zeros_like(x)
    sigma = max(min(x.shape[-2:]) * BLUR_SIGMA, 0.5)
    # +-3 sigma: the reflected border (3/16 of the short side) always fits inside the image.
    kernel = 2 * int(np.ceil(3 * sigma)) + 1
    return TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A uniform random map in [0, 1) of ``shape`` (height, width), from numpy's PCG64 with ``seed``."""
    return np.random.default_rng(seed).random(shape)


def prior_map(shape: tuple[int, int]) -> np.ndarray:
    """A centred isotropic Gaussian of ``shape`` (height, width), sigma a quarter of the short
    side, peak 1 at the image centre. Its order (by distance from the centre) is all that counts."""
    height, width = shape
    rows = np.arange(height, dtype=np.float64)[:, None] - (height - 1) / 2
    columns = np.arange(width, dtype=np.float64)[None, :] - (width - 1) / 2
    sigma = min(height, width) / 4
    return np.exp(-(rows**2 + columns**2) / (2 * sigma**2))


def pixel_order(values: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most salient first; equal values in raster order (a stable sort)."""
    return np.argsort(-values.astype(np.float64).ravel(), kind="stable")


def area_under_curve(curve: np.ndarray, fractions: np.ndarray) -> float:
    """Trapezoid-rule area under ``curve`` over ``fractions``."""
    return float(np.sum((curve[1:] + curve[:-1]) * np.diff(fractions)) / 2)


class _Counter:
    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)


def _score(module: nn.Module, x: torch.Tensor, fill: torch.Tensor, order: np.ndarray, target: int, steps: int,
           batch: int, clean_p: float, baseline_p: float, counter: _Counter) -> Scores:
    """Both curves of one pixel order. Their end points are the clean image and the baseline,
    whose probabilities are known: only the ``steps - 1`` images in between run, per curve."""
    height, width = x.shape[-2:]
    pixels = height * width
    # rank[p] = position of pixel p in the order; after step k the first counts[k] are switched.
    rank = torch.empty(pixels, dtype=torch.long)
    rank[torch.from_numpy(order)] = torch.arange(pixels)
    rank = rank.view(1, 1, height, width).to(x.device)
    counts = [(k * pixels) // steps for k in range(steps + 1)]
    deletion = [clean_p] + _probabilities(module, x, fill, rank, counts[1:-1], target, batch, counter) + [baseline_p]
    insertion = [baseline_p] + _probabilities(module, fill, x, rank, counts[1:-1], target, batch, counter) + [clean_p]
    fractions = np.arange(steps + 1, dtype=np.float64) / steps
    deletion_curve, insertion_curve = np.asarray(deletion), np.asarray(insertion)
    return Scores(
        deletion=area_under_curve(deletion_curve, fractions),
        insertion=area_under_curve(insertion_curve, fractions),
        deletion_curve=deletion_curve,
        insertion_curve=insertion_curve,
    )


def _probabilities(module: nn.Module, start: torch.Tensor, end: torch.Tensor, rank: torch.Tensor,
                   counts: list[int], target: int, batch: int, counter: _Counter) -> list[float]:
    """Target probabilities of ``start`` with its first ``count`` pixels (in rank order) taken
    from ``end``, for each count, ``batch`` images per forward pass."""
    found: list[float] = []
    with torch.inference_mode():
        for first in range(0, len(counts), batch):
            chunk = torch.tensor(counts[first:first + batch], device=rank.device).view(-1, 1, 1, 1)
            switched = rank < chunk  # (n, 1, H, W)
            images = torch.where(switched, end, start)
            logits = _class_scores(module(images))
            found += torch.softmax(logits.float(), dim=1)[:, target].double().cpu().tolist()
            counter.add(len(chunk))
    return found


def _check_references(earlier: Faithfulness, target: int, baseline: str, steps: int, seed: int, clean_p: float,
                      baseline_p: float) -> None:
    """Refuse reference scores measured under other conditions (the probabilities of the clean
    image and the baseline stand for the model and the image)."""
    mine = (target, baseline, steps, seed)
    theirs = (earlier.target_index, earlier.baseline, earlier.steps, earlier.seed)
    same_run = np.isclose(earlier.clean_probability, clean_p, rtol=1e-4, atol=1e-7) and np.isclose(
        earlier.baseline_probability, baseline_p, rtol=1e-4, atol=1e-7)
    if mine != theirs or not same_run:
        raise FaithfulnessError(
            "references_from holds scores of another model, image, target, baseline, steps or seed "
            f"(target, baseline, steps, seed: {theirs} there, {mine} here): leave it out to measure them"
        )


def _class_scores(output: object) -> torch.Tensor:
    scores = class_scores(output)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        raise FaithfulnessError("the model must return class scores (batch, classes) to be scored")
    return scores


def _saliency_values(saliency: object, rgb: np.ndarray, target: Target) -> tuple[np.ndarray, Target]:
    """The map as a float64 (height, width) array, checked against the network input grid, and
    the target (an :class:`ActivationVolume` brings its evidence target)."""
    from .volume import ActivationVolume

    height, width = rgb.shape[:2]
    if isinstance(saliency, ActivationVolume):
        if saliency.evidence is None:
            raise FaithfulnessError("the volume has no evidence map to score: compute it with evidence='cam', "
                                    "'gradcam' or 'occlusion', or pass a (height, width) map")
        if saliency.image.shape != rgb.shape or not np.array_equal(saliency.image, rgb):
            raise FaithfulnessError(
                f"the volume was made from another picture than this image's {width}x{height} network input: "
                "score it with the image and the input_size, fit and max_side it was computed with"
            )
        if target is None and saliency.evidence_info is not None:
            target = saliency.evidence_info.target_index
        saliency = saliency.evidence
    if isinstance(saliency, torch.Tensor):
        saliency = saliency.detach().cpu().numpy()
    try:
        values = np.asarray(saliency, dtype=np.float64)
    except (TypeError, ValueError):
        raise FaithfulnessError(f"the saliency map must be a (height, width) array of numbers, "
                                f"not {type(saliency).__name__}") from None
    if values.shape != (height, width):
        raise FaithfulnessError(
            f"the saliency map is {'x'.join(str(v) for v in values.shape) or 'a scalar'} (rows x columns) but the "
            f"image's network input is {height}x{width}: give a map on the input grid (vol.evidence has it), made "
            "with the same input_size, fit and max_side"
        )
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise FaithfulnessError(f"the saliency map has {bad} NaN or infinite values: replace them "
                                "(np.nan_to_num) before scoring")
    return values, target
