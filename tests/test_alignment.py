"""Every level is drawn where its cells look: receptive-field geometry and the aligned volume.

Three kinds of evidence (issue 9, "aligned levels"):

* a *geometric* ResNet-50 (every convolution a uniform positive average, batch norms the
  identity, max pooling replaced by average pooling) answers a small bright square on a black
  picture with a response symmetric about the square at every depth; the volume must draw that
  response centred on the square, within 1 px, at every level, for square and non-square
  inputs, with ``nearest`` and ``bilinear`` drawing;
* for several torchvision architectures the input pixels that can change a cell's output (the
  support of its gradient) are exactly the analytic receptive field ``Geometry.box`` clipped
  to the image;
* the metadata of ResNet-50 holds the stride, receptive field and offset derived by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

import cnn_engine
from cnn_engine.graph import instrument
from cnn_engine.layers import probe_shapes
from cnn_engine.receptive import Geometry, graph_geometry

SQUARE_SIDE = 5  # odd: the square's centre is a pixel centre


def geometric_resnet50() -> nn.Module:
    """torchvision's ResNet-50 made a linear, positive, symmetric smoother.

    Every convolution averages its k x k x c_in window (weights 1 / (k * k * c_in)), batch
    norms are the identity (eval mode; weight 1, bias 0, running mean 0, variance 1) and the
    3x3 max pooling becomes an average pooling with the same kernel, stride and padding. On a
    picture that is black (0: the preprocessing below uses mean 0, std 1) but for a bright
    square, every activation is then a non-negative, linear, mirror-symmetric blur of the
    square around it, and all channels of a layer are equal.
    """
    model = torchvision.models.resnet50(weights=None)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            nn.init.constant_(module.weight, 1.0 / (kh * kw * module.in_channels // module.groups))
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
    pool = model.maxpool
    model.maxpool = nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding)
    return model.eval()


@pytest.fixture(scope="module")
def geometric() -> nn.Module:
    return geometric_resnet50()


def square_picture(size: tuple[int, int], centre: tuple[int, int]) -> np.ndarray:
    """A black (height, width, 3) uint8 picture with a white SQUARE_SIDE px square at ``centre``."""
    picture = np.zeros((*size, 3), np.uint8)
    half = SQUARE_SIDE // 2
    picture[centre[0] - half:centre[0] + half + 1, centre[1] - half:centre[1] + half + 1] = 255
    return picture


def peak_centre(plane: np.ndarray) -> tuple[float, float]:
    """Where a drawn level puts its response peak: (row, column) in input pixels.

    The centroid of the part of the response above half its maximum, weighted by how far above.
    Not the centroid of the whole level: ResNet-50's deep responses are wide (a layer4 cell two
    cells, 64 px, from the square still answers with 18 % of the peak), so the picture's borders
    cut them unevenly and the edge cells, drawn on to the border, weigh more: the whole-level
    centroid of a correctly drawn layer4.2 lies 1.6 to 3.4 px off the square at positions below,
    measuring where the picture ends rather than where the cells are drawn. Not the centre of the
    maximum plateau either: where the square lies half-way between two cells, those two tie
    only up to the zero padding of the deeper layers (0.2 % apart near a border), so the
    plateau would flip to one cell. Above half maximum are the cells nearest the square on each
    side, in equal measure when the drawing is right (the positions below keep them away from
    the picture's borders): their centroid moves one for one with any shift of the drawing.
    """
    peak = np.nan_to_num(plane) - 0.5 * np.nanmax(plane)
    weights = np.clip(peak, 0.0, None)
    rows, cols = np.indices(plane.shape)
    total = weights.sum()
    return float((weights * rows).sum() / total), float((weights * cols).sum() / total)


# Square positions (row, column), per input (height, width). All are multiples of 16 px: with
# ResNet-50's offsets of 0 (derived in test_resnet50_level_geometry_at_224) each is a cell centre
# or the midpoint of two cells at every stride (1, 2, 4, 8, 16, 32), so the response sampled by
# the cells is symmetric about the square. Elsewhere the sampling alone moves the peak by up to
# half a stride, however the level is drawn. The cells that can be above half maximum lie less
# than 48 px (1.5 layer4 cells) from the square; none of them may be the first or last cell of
# its row or column, whose drawn part is cut by the picture's border or runs on to it (layer4's
# last cell centre is at 192 for 224 px, 256 for 288 px, 320 for 337 px). The positions mix cell
# centres and midpoints, in rows and in columns.
POSITIONS = {
    (224, 224): [(64, 64), (112, 144), (144, 96), (80, 128)],
    (224, 337): [(64, 272), (128, 208), (96, 80), (144, 144)],  # the cat's grid: 337 = 10.5 x 32
    (288, 224): [(208, 64), (144, 112), (80, 144)],  # portrait, 288 = 9 x 32 high, 7 x 32 wide
}


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", list(POSITIONS), ids=lambda s: f"{s[1]}x{s[0]}")
def test_every_level_draws_the_square_response_on_the_square(geometric, size, interpolation):
    # The short side is 224 = input_size: the picture reaches the network unresized.
    misplaced = []
    for centre in POSITIONS[size]:
        vol = cnn_engine.compute_volume(geometric, square_picture(size, centre), layers="blocks", top_k=1,
                                        interpolation=interpolation, mean=(0, 0, 0), std=(1, 1, 1))
        assert vol.arrays["rank0"].shape == (19, *size)
        for level, plane in zip(vol.levels, vol.arrays["rank0"]):
            drawn = peak_centre(plane)
            if max(abs(drawn[0] - centre[0]), abs(drawn[1] - centre[1])) > 1.0:
                misplaced.append(f"{level.name} (stride {level.stride[0]:g}): square at {centre}, "
                                 f"drawn at ({drawn[0]:.2f}, {drawn[1]:.2f})")
    assert not misplaced, "\n".join(misplaced)


# -- the analytic receptive field is the gradient's support ------------------------------------

# (height, width): small, so that eight models run in about half a minute, and multiples of 32.
# At other sizes unpadded strided operations never read the last pixels at all (ConvNeXt's 4x4
# stem leaves columns 136 to 138 of a 139 px wide input unread): every cell's support then stops
# short of its box by those pixels, which are in no cell's field.
GRADIENT_SIZE = (96, 128)

ARCHITECTURES = {
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "vgg16": lambda: torchvision.models.vgg16(weights=None),
    "densenet121": lambda: torchvision.models.densenet121(weights=None),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(weights=None),
    "mobilenet_v3_large": lambda: torchvision.models.mobilenet_v3_large(weights=None),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(weights=None),
    "regnet_y_400mf": lambda: torchvision.models.regnet_y_400mf(weights=None),
    "googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True),
}


def field_model(build) -> nn.Module:
    """A torchvision model (random weights, eval) whose gradients reach its whole receptive fields.

    Max pooling passes gradient to one pixel of its window only, so it becomes average pooling
    of the same kernel, stride, padding and rounding. Squeeze-and-excitation blocks pool the whole
    map, so every cell would depend on every pixel through them: their last 1x1 convolution is
    set to zero, which makes their scale a constant and leaves the local path alone. ConvNeXt
    scales each block's branch by a layer scale of 1e-6: the far pixels of a deep field are
    reached only through six or more branches in a row, 1e-36 before any weight, which underflows
    float32 to an exact 0; the layer scales are set to 1. Every convolution on the local path keeps
    its random, nonzero weights.
    """
    torch.manual_seed(0)
    model = build()
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode))
        if isinstance(module, SqueezeExcitation):
            nn.init.zeros_(module.fc2.weight)
    for name, parameter in model.named_parameters():
        if name.endswith("layer_scale"):
            nn.init.ones_(parameter)
    return model.eval()


def probed_operations(geometry: dict[str, Geometry], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The deepest operation at each stride whose output has an interior cell (3 x 3 cells or more)
    and whose geometry is exact (not an assumed resize)."""
    deepest: dict[tuple[float, float], str] = {}
    for name, g in geometry.items():
        if name != "input" and g.note == "exact" and min(shapes[name][2:]) >= 3:
            deepest[g.stride] = name
    return list(deepest.values())


def box_pixels(geometry: Geometry, row: int, col: int, size: tuple[int, int]) -> torch.Tensor:
    """(height, width) bool mask of the pixels inside cell (row, col)'s box, clipped to the image.

    Pixel i is inside when its extent [i - 0.5, i + 0.5] lies within the box."""
    top, left, bottom, right = geometry.box(row, col)
    first = [max(math.ceil(v + 0.5 - 1e-9), 0) for v in (top, left)]
    last = [min(math.floor(v - 0.5 + 1e-9), n - 1) for v, n in zip((bottom, right), size)]
    mask = torch.zeros(size, dtype=torch.bool)
    mask[first[0]:last[0] + 1, first[1]:last[1] + 1] = True
    return mask


def extent(mask: torch.Tensor) -> str:
    """'rows a-b, columns c-d' of the True pixels of a mask, for messages."""
    found = mask.nonzero()
    if not len(found):
        return "nothing"
    (r0, c0), (r1, c1) = found.min(0).values.tolist(), found.max(0).values.tolist()
    return f"rows {r0}-{r1}, columns {c0}-{c1}"


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_gradient_support_of_a_cell_is_its_receptive_field(name):
    model = field_model(ARCHITECTURES[name])
    geometry = graph_geometry(model, GRADIENT_SIZE)
    probed = probed_operations(geometry, probe_shapes(model, list(geometry), GRADIENT_SIZE))
    assert len(probed) >= 4, f"{name}: too few levels to probe: {probed}"

    outputs: dict[str, torch.Tensor] = {}
    x = torch.randn(1, 3, *GRADIENT_SIZE, requires_grad=True)
    instrument(model, probed)(x, lambda i, value: outputs.__setitem__(probed[i], value))
    wrong = []
    for op in probed:
        value = outputs[op]
        height, width = value.shape[2:]
        # An interior cell, and the first and last cells, whose fields run over the borders.
        for row, col in [(height // 2, width // 2), (0, 0), (height - 1, width - 1)]:
            # Random channel weights, not a plain sum: a layer norm's channels sum to a constant.
            weights = torch.randn(value.shape[1], generator=torch.Generator().manual_seed(1))
            (grad,) = torch.autograd.grad((value[0, :, row, col] * weights).sum(), x, retain_graph=True)
            support = grad[0].abs().sum(0) != 0
            expected = box_pixels(geometry[op], row, col, GRADIENT_SIZE)
            if not torch.equal(support, expected):
                wrong.append(f"{op} cell ({row}, {col}), {geometry[op]}: box {extent(expected)} "
                             f"({int(expected.sum())} px), gradient reaches {extent(support)} "
                             f"({int(support.sum())} px)")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)


# -- the numbers, by hand ----------------------------------------------------------------------

# ResNet-50 along either axis, starting from the input (stride 1, field 1, offset 0). An
# operation with kernel k, stride s, padding p maps (stride S, field F, offset O) to
# (S * s, F + (k - 1) * S, O + S * ((k - 1) / 2 - p)); 1x1 convolutions change nothing, and a
# bottleneck's 3x3 convolution (padding 1, so O stays) is its only widening: F += 2 * S.
#   conv1 7x7/2 pad 3: S 2, F 1 + 6 = 7, O 0 + (3 - 3) = 0       -> "relu" (bn1, relu keep it)
#   maxpool 3x3/2 pad 1: S 4, F 7 + 2 * 2 = 11, O 0 + 2 * (1 - 1) = 0
#   layer1, 3 blocks at S 4: F 11 + 8 = 19, 27, 35
#   layer2.0's 3x3 has stride 2 (torchvision's "v1.5"): F 35 + 2 * 4 = 43, S 8, O 0 + 4 * 0 = 0;
#     its 1x1/2 shortcut (F 35, O 0) is narrower: the sum keeps 43. Then 43 + 16 = 59, 75, 91
#   layer3 at S 16: 91 + 16 = 107, then + 32: 139, 171, 203, 235, 267
#   layer4 at S 32: 267 + 32 = 299, then + 64: 363, 427
# Every offset is 0: cell (r, c) of every level is centred on input pixel (r * S, c * S), whatever
# the input size (padding 1 on a 3x3 kernel and 3 on a 7x7 one centre the window on its cell).
RESNET50_BLOCKS = [
    ("input", 1, 1), ("relu", 2, 7), ("maxpool", 4, 11),
    ("layer1.0", 4, 19), ("layer1.1", 4, 27), ("layer1.2", 4, 35),
    ("layer2.0", 8, 43), ("layer2.1", 8, 59), ("layer2.2", 8, 75), ("layer2.3", 8, 91),
    ("layer3.0", 16, 107), ("layer3.1", 16, 139), ("layer3.2", 16, 171), ("layer3.3", 16, 203),
    ("layer3.4", 16, 235), ("layer3.5", 16, 267),
    ("layer4.0", 32, 299), ("layer4.1", 32, 363), ("layer4.2", 32, 427),
]


@pytest.mark.parametrize("size", [(224, 224), (224, 337)], ids=["224x224", "337x224"])
def test_resnet50_level_geometry_at_224(resnet50_random, size):
    # 337 px wide is 10.5 layer4 cells: the stride stays 32 (not 337 / 11 = 30.6).
    vol = cnn_engine.compute_volume(resnet50_random, np.zeros((*size, 3), np.uint8), layers="blocks", top_k=1)
    found = [(lv.name, lv.stride, lv.receptive_field, lv.offset, lv.geometry) for lv in vol.levels]
    assert found == [(name, (s, s), (f, f), (0.0, 0.0), "exact") for name, s, f in RESNET50_BLOCKS]
