"""Image perturbations with a severity in natural units, for sweeps of one image.

Each :class:`Perturbation` changes the fitted network-input picture, an (H, W, 3) uint8 array in
image order (row 0 = top), into another of the same shape, so pixel units are *input pixels*
(one cell of level 0 of a volume). Where ``torchvision.transforms.v2.functional`` has the
operation, it does the work; the severity is converted to its argument here.

=============  ==========  =============================================  ========  ===============
name           parameter   unit                                           identity  range
=============  ==========  =============================================  ========  ===============
brightness     factor      1 (every pixel value times the factor)         1         0 to 4
contrast       factor      1 (blend with the picture's mean grey)         1         0 to 4
gamma          gamma       1 (exponent: 255 (value / 255) ** gamma)       1         0.1 to 10
saturation     factor      1 (blend with the greyscale picture)           1         0 to 4
hue            shift       degree (around the hue circle)                 0         -180 to 180
blur           sigma       input pixels (Gaussian standard deviation)     0         0 to 32
noise          sigma       fraction of full scale (255 = 1)               0         0 to 1
jpeg           quality     JPEG quality (1-100)                           none      1 to 100
rotation       angle       degree (counter-clockwise, about the centre)   0         -180 to 180
scale          factor      1 (zoom about the centre; above 1 enlarges)    1         0.1 to 10
translation    shift       input pixels (to the right; negative = left)   0         -1024 to 1024
occlusion      patch size  input pixels (side of a square patch)          0         0 to 1024
=============  ==========  =============================================  ========  ===============

Details that decide the pixels:

* The identity severity returns a copy of the input, bit for bit (the operations themselves
  would round through floating point).
* ``blur``: kernel of ``2 * ceil(3 sigma) + 1`` pixels, applied across then down (separable: the
  same blur as the square kernel, to rounding), reflected at the borders, rounded to 8 bits once;
  the half-width is capped at the short side minus one (reflection needs it), which only matters
  for sigma above a third of the short side.
* ``noise``: Gaussian noise of standard deviation ``sigma`` (in units of full scale) added to
  values in [0, 1], clipped to [0, 1], rounded to 8 bits. ``seed`` fixes it; the global torch
  random state is left as it was.
* ``jpeg``: an in-memory encode and decode at that quality by Pillow's encoder (what
  ``torchvision.transforms.v2.functional.jpeg`` does for a PIL image), default settings (4:2:0
  chroma subsampling). The quality is rounded to a whole number. There is no identity: quality
  100 still loses information.
* ``rotation``, ``scale``, ``translation``: bilinear interpolation, same picture size; what comes
  into view from outside the picture is filled with ``fill`` (option; default the ImageNet mean
  colour (124, 116, 104), which the network's normalisation maps to zero, like the ``mean``
  occluder).
* ``occlusion``: a square patch of side ``round(severity)`` input pixels centred at ``position``
  ``(x, y)`` in input pixels (option; default the picture centre), clipped to the picture, filled
  as :func:`cnn_engine.evidence.occlusion.occluder_image` fills the patches of an occlusion map
  (option ``occluder``: ``mean`` colour, ``blur`` as wide as the patch, seeded ``noise``), in
  the normalisation of ``mean``/``std`` (options; default ImageNet's).

torch and torchvision are imported on first use, so the table (``PERTURBATIONS``) can be read
without them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from .errors import CnnEngineError
from .options import OCCLUDERS

#: ImageNet's per-channel mean and standard deviation (as models.IMAGENET_MEAN/STD, which imports
#: torch): the default normalisation of the occluders and the default fill colour.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: What rotation, scale and translation bring into view: the ImageNet mean colour in 8 bits.
DEFAULT_FILL = tuple(round(255 * m) for m in _IMAGENET_MEAN)


@dataclass(frozen=True)
class Perturbation:
    """One perturbation and its severity (see the module docstring for the table).

    ``parameter`` names what the severity is, ``unit`` its unit, ``identity`` the severity that
    leaves the picture unchanged (None: there is none), ``low``/``high`` the accepted range
    (inclusive) and ``default_values`` the default sweep, ascending, with the identity where
    there is one.
    """

    name: str
    parameter: str
    unit: str
    identity: float | None
    low: float
    high: float
    default_values: tuple[float, ...]
    description: str
    _operation: Callable[..., np.ndarray] = field(repr=False, compare=False, default=None)
    _label: str = field(repr=False, compare=False, default="")
    _mildest: float | None = field(repr=False, compare=False, default=None)

    @property
    def mildest(self) -> float:
        """The severity nearest the clean picture: the identity, or where there is none the end of
        the range that changes the picture least (JPEG: quality 100)."""
        return self.identity if self.identity is not None else float(self._mildest)

    def apply(self, rgb: np.ndarray, severity: float, seed: int = 0, **options: Any) -> np.ndarray:
        """The perturbed picture: ``rgb`` (H, W, 3) uint8, image order -> the same shape, uint8.

        Deterministic: the same arguments give the same bytes (``seed`` fixes the noise).
        ``options``: ``fill`` for rotation, scale and translation; ``position``, ``occluder``,
        ``mean`` and ``std`` for occlusion.
        """
        value = check_severities(self, (severity,))[0]
        picture = _checked_picture(rgb)
        allowed = _OPTIONS.get(self.name, ())
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            hint = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            raise CnnEngineError(f"{self.name} got unknown option(s) {', '.join(unknown)}: {hint}")
        if self.identity is not None and value == self.identity:
            return picture.copy()
        return self._operation(picture, value, seed, **options)

    def label(self, severity: float) -> str:
        """A short caption for a time slider or a table: ``"blur sigma 2.5"``, ``"rotation 15 deg"``."""
        value = float(severity)
        if self.name in ("jpeg", "occlusion"):
            value = float(round(value))  # applied as a whole number
        return self._label.format(_number(value))


def perturbation(name: str) -> Perturbation:
    """The perturbation called ``name`` (lower case); an unknown name lists the known ones."""
    found = PERTURBATIONS.get(name) if isinstance(name, str) else None
    if found is None:
        raise CnnEngineError(f"unknown perturbation {name!r}: use one of {', '.join(PERTURBATIONS)}")
    return found


def check_severities(p: Perturbation, values: float | Iterable[float]) -> tuple[float, ...]:
    """``values`` (one number or several) as floats, each checked against ``p``'s range."""
    if isinstance(values, (int, float, np.number)):
        values = (values,)
    checked = []
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CnnEngineError(f"{p.name} {p.parameter} {value!r} is not a number: "
                                 f"use {_number(p.low)} to {_number(p.high)} ({p.unit})") from None
        if not math.isfinite(number):
            raise CnnEngineError(f"{p.name} {p.parameter} {value!r} is not a finite number: "
                                 f"use {_number(p.low)} to {_number(p.high)} ({p.unit})")
        if not p.low <= number <= p.high:
            raise CnnEngineError(f"{p.name} {p.parameter} {_number(number)} is out of range: "
                                 f"use {_number(p.low)} to {_number(p.high)} ({p.unit})")
        checked.append(number)
    if not checked:
        raise CnnEngineError(f"no {p.name} {p.parameter} given: give at least one value from "
                             f"{_number(p.low)} to {_number(p.high)} ({p.unit})")
    return tuple(checked)


def _number(value: float) -> str:
    """``2.5``, ``30``, ``-15``: no trailing zeros, no exponent for the numbers used here."""
    return f"{value:.6g}"


def _checked_picture(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise CnnEngineError(f"a perturbation takes an (H, W, 3) uint8 picture, not a {got}: "
                             "pass the fitted network-input picture (NetworkInput.rgb)")
    return rgb


# The operations: (H, W, 3) uint8 -> (H, W, 3) uint8, severity already checked and not the identity.

def _tensor(rgb: np.ndarray):
    """(3, H, W) uint8 tensor sharing nothing with ``rgb``."""
    import torch

    return torch.from_numpy(np.array(rgb, dtype=np.uint8, order="C")).permute(2, 0, 1).contiguous()


def _picture(tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.permute(1, 2, 0).numpy())


def _functional():
    import torchvision.transforms.v2.functional as F

    return F


def _brightness(rgb, factor, seed):
    return _picture(_functional().adjust_brightness(_tensor(rgb), factor))


def _contrast(rgb, factor, seed):
    return _picture(_functional().adjust_contrast(_tensor(rgb), factor))


def _gamma(rgb, gamma, seed):
    return _picture(_functional().adjust_gamma(_tensor(rgb), gamma))


def _saturation(rgb, factor, seed):
    return _picture(_functional().adjust_saturation(_tensor(rgb), factor))


def _hue(rgb, degrees, seed):
    # torchvision's hue factor is a fraction of a full turn, -0.5 to 0.5.
    return _picture(_functional().adjust_hue(_tensor(rgb), degrees / 360.0))


def _blur(rgb, sigma, seed):
    import torch

    F = _functional()
    half = min(math.ceil(3 * sigma), min(rgb.shape[:2]) - 1)
    kernel = 2 * half + 1
    # Across, then down (a Gaussian is separable; a kernel of one pixel leaves that direction
    # alone): the same blur as one square kernel, in 2k instead of k * k products a pixel.
    values = _tensor(rgb).float()
    values = F.gaussian_blur(values, [kernel, 1], [sigma, sigma])
    values = F.gaussian_blur(values, [1, kernel], [sigma, sigma])
    return _picture(torch.round(values).clamp(0, 255).to(torch.uint8))


def _noise(rgb, sigma, seed):
    import torch

    values = _tensor(rgb).float() / 255.0
    # torchvision draws from the global generator: seed it inside a fork so the caller's random
    # state is untouched and the same seed gives the same noise.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noisy = _functional().gaussian_noise(values, mean=0.0, sigma=sigma, clip=True)
    return _picture(torch.round(noisy * 255.0).to(torch.uint8))


def _jpeg(rgb, quality, seed):
    from PIL import Image

    # For a PIL image torchvision encodes and decodes with Pillow, in memory.
    decoded = _functional().jpeg(Image.fromarray(rgb), quality=int(round(quality)))
    return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def _fill(fill) -> list[float]:
    colour = DEFAULT_FILL if fill is None else fill
    try:
        values = [float(v) for v in colour]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise CnnEngineError(f"fill {fill!r} is not a colour: give (red, green, blue), each 0 to 255")
    return values


def _affine(rgb, fill, angle=0.0, scale=1.0, shift=0.0):
    F = _functional()
    out = F.affine(_tensor(rgb), angle=angle, translate=[shift, 0.0], scale=scale, shear=[0.0, 0.0],
                   interpolation=F.InterpolationMode.BILINEAR, fill=_fill(fill))
    return _picture(out)


def _rotation(rgb, degrees, seed, fill=None):
    return _affine(rgb, fill, angle=degrees)


def _scale(rgb, factor, seed, fill=None):
    return _affine(rgb, fill, scale=factor)


def _translation(rgb, pixels, seed, fill=None):
    return _affine(rgb, fill, shift=pixels)


def _occlusion(rgb, side, seed, position=None, occluder="mean", mean=_IMAGENET_MEAN, std=_IMAGENET_STD):
    import torch

    from .evidence.occlusion import occluder_image

    if occluder not in OCCLUDERS:
        raise CnnEngineError(f"unknown occluder {occluder!r}: use one of {', '.join(OCCLUDERS)}")
    height, width = rgb.shape[:2]
    x, y = (width / 2.0, height / 2.0) if position is None else _position(position)
    if not (0 <= x < width and 0 <= y < height):  # every step would be the clean picture
        raise CnnEngineError(f"occlusion position ({_number(x)}, {_number(y)}) is outside the {width} x {height} "
                             f"network input: give a centre inside it, x from 0 to {width - 1} and y from 0 to "
                             f"{height - 1} (input pixels)")
    patch = int(round(side))
    left, top = int(round(x - patch / 2.0)), int(round(y - patch / 2.0))
    x0, x1 = max(left, 0), min(left + patch, width)
    y0, y1 = max(top, 0), min(top + patch, height)
    out = rgb.copy()
    if x0 >= x1 or y0 >= y1:
        return out  # the patch lies outside the picture
    mean_t = torch.tensor(_triple(mean, "mean"), dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(_triple(std, "std"), dtype=torch.float32).view(1, 3, 1, 1)
    normalised = (_tensor(rgb).unsqueeze(0).float() / 255.0 - mean_t) / std_t
    # The blur occluder's kernel is as wide as the patch; reflection needs it narrower than the picture.
    fill = occluder_image(normalised, occluder, min(patch, height, width), seed=seed)
    pixels = torch.round((fill * std_t + mean_t) * 255.0).clamp(0, 255).to(torch.uint8)[0]
    out[y0:y1, x0:x1] = _picture(pixels)[y0:y1, x0:x1]
    return out


def _position(position) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in position)
    except (TypeError, ValueError):
        x = y = math.nan
    if not (math.isfinite(x) and math.isfinite(y)):
        raise CnnEngineError(f"position {position!r} is not a point: give (x, y) in input pixels")
    return x, y


def _triple(values, name: str) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        triple = ()
    if len(triple) != 3 or (name == "std" and min(triple) <= 0):
        raise CnnEngineError(f"{name} {values!r} is not three per-channel values (red, green, blue)"
                             + (", all positive" if name == "std" else ""))
    return triple  # type: ignore[return-value]


#: The options each perturbation takes besides severity and seed.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "rotation": ("fill",), "scale": ("fill",), "translation": ("fill",),
    "occlusion": ("position", "occluder", "mean", "std"),
}

#: Every perturbation, by name, in the documented order.
PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("brightness", "factor", "1", 1.0, 0.0, 4.0,
                 (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
                 "every pixel value times the factor, clipped: 0 is black, 1 the picture",
                 _brightness, "brightness factor {}"),
    Perturbation("contrast", "factor", "1", 1.0, 0.0, 4.0,
                 (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
                 "blend with the picture's mean grey level: 0 is uniform grey, 1 the picture",
                 _contrast, "contrast factor {}"),
    Perturbation("gamma", "gamma", "1", 1.0, 0.1, 10.0,
                 (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
                 "255 (value / 255) ** gamma: below 1 brightens the shadows, above 1 darkens them",
                 _gamma, "gamma {}"),
    Perturbation("saturation", "factor", "1", 1.0, 0.0, 4.0,
                 (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
                 "blend with the greyscale picture: 0 is grey, 1 the picture, above 1 more vivid",
                 _saturation, "saturation factor {}"),
    Perturbation("hue", "shift", "degree", 0.0, -180.0, 180.0,
                 (-180.0, -135.0, -90.0, -45.0, 0.0, 45.0, 90.0, 135.0, 180.0),
                 "every colour turned around the hue circle (HSV); 180 gives complementary colours",
                 _hue, "hue shift {} deg"),
    Perturbation("blur", "sigma", "input pixels", 0.0, 0.0, 32.0,
                 (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
                 "Gaussian blur of standard deviation sigma, kernel 2 ceil(3 sigma) + 1 pixels",
                 _blur, "blur sigma {}"),
    Perturbation("noise", "sigma", "fraction of full scale", 0.0, 0.0, 1.0,
                 (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
                 "seeded Gaussian noise of standard deviation sigma (1 = 255 levels), clipped",
                 _noise, "noise sigma {}"),
    Perturbation("jpeg", "quality", "JPEG quality (1-100)", None, 1.0, 100.0,
                 (1.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 90.0, 100.0),
                 "JPEG encode and decode at that quality (Pillow, in memory): lower is stronger",
                 _jpeg, "jpeg quality {}", _mildest=100.0),
    Perturbation("rotation", "angle", "degree", 0.0, -180.0, 180.0,
                 (-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0),
                 "rotation counter-clockwise about the picture centre, corners filled",
                 _rotation, "rotation {} deg"),
    Perturbation("scale", "factor", "1", 1.0, 0.1, 10.0,
                 (0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 2.0),
                 "zoom about the picture centre, same picture size: above 1 enlarges (crops), "
                 "below 1 shrinks (border filled)",
                 _scale, "scale factor {}"),
    Perturbation("translation", "shift", "input pixels", 0.0, -1024.0, 1024.0,
                 (0.0, 8.0, 16.0, 32.0, 48.0, 64.0, 96.0),
                 "the picture moved right (negative: left), the uncovered strip filled",
                 _translation, "translation {} px"),
    Perturbation("occlusion", "patch size", "input pixels", 0.0, 0.0, 1024.0,
                 (0.0, 16.0, 32.0, 48.0, 64.0, 96.0, 128.0),
                 "a square patch of that side hidden at a position (default the centre) by an occluder",
                 _occlusion, "occlusion patch {} px"),
)}
