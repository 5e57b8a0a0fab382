"""Where each feature cell sits on the input: stride, receptive field and centre, from the graph.

Coordinates are input pixels with input pixel ``(i, j)`` centred at ``(i, j)`` (so it spans
``[i - 0.5, i + 0.5]``), rows first. Along each axis a layer output is described by three
numbers, propagated operation by operation through the traced graph (see
:mod:`cnn_engine.graph`) from the input (offset 0, stride 1, receptive field 1):

``stride``           input pixels between the centres of neighbouring cells
``receptive_field``  side of the input region a cell sees, in input pixels
``offset``           centre of cell 0 (cell ``r`` is centred at ``offset + r * stride``)

A convolution or pooling with kernel ``k``, stride ``s``, padding ``p`` (before the first
element) and dilation ``d`` maps ``(offset, stride, field)`` to
``(offset + stride * (d * (k - 1) / 2 - p), stride * s, field + d * (k - 1) * stride)``. Explicit
padding (``ZeroPad2d``, ``F.pad``: "same" padding done by hand, as in EfficientNet ports) moves
the offset by ``-left * stride``. Every operation that keeps the height and width (batch norm,
activations, residual sums, channel concatenation, attention scales) keeps the geometry; where
branches of different depth meet, the widest receptive field is kept. The numbers are read from
the operations as they run on an input of the real size, so "same" padding computed from the
input size and adaptive pooling come out right for that size.

Where an operation is not understood (an upsampling, a reshape that changes the height or
width) the geometry is assumed (a uniform resize, or the last geometry seen at that size) and
``note`` says so; it is ``exact`` otherwise. For padded stride-2 layers the centre of cell 0 is
not the middle of its ``stride x stride`` footprint: ResNet-50's cell ``r`` at stride 32 is
centred on input pixel ``32 r``, 15.5 pixels up and left of its footprint's middle.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

from .errors import LayerError

EXACT = "exact"


@dataclass(frozen=True)
class Geometry:
    """A layer output's cells on the input, (rows, columns) each, in input pixels.

    See the module docstring for the definitions and the coordinate convention.
    """

    stride: tuple[float, float]
    receptive_field: tuple[float, float]
    offset: tuple[float, float]
    note: str = EXACT

    def centre(self, row: float, col: float) -> tuple[float, float]:
        """Input position (y, x) of the centre of cell (``row``, ``col``)."""
        return (self.offset[0] + row * self.stride[0], self.offset[1] + col * self.stride[1])

    def box(self, row: float, col: float) -> tuple[float, float, float, float]:
        """The receptive field of cell (``row``, ``col``): (top, left, bottom, right) in input
        pixel coordinates (pixel i spans [i - 0.5, i + 0.5]), not clipped to the image."""
        y, x = self.centre(row, col)
        half_y, half_x = self.receptive_field[0] / 2, self.receptive_field[1] / 2
        return (y - half_y, x - half_x, y + half_y, x + half_x)


INPUT_GEOMETRY = Geometry(stride=(1.0, 1.0), receptive_field=(1.0, 1.0), offset=(0.0, 0.0))


def footprint_geometry(cells: tuple[int, int], size: tuple[int, int], note: str) -> Geometry:
    """The assumption where the graph says nothing: ``cells`` (rows, columns) spread evenly over
    an input of ``size`` (height, width), each centred on its footprint, receptive field unknown."""
    stride = tuple(size[a] / cells[a] for a in (0, 1))
    return Geometry(stride=stride, receptive_field=(float("nan"), float("nan")),
                    offset=tuple((stride[a] - 1) / 2 for a in (0, 1)), note=note)


@dataclass(frozen=True)
class _Window:
    """A sliding window along both axes: kernel, stride, padding before, dilation."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[float, float]
    dilation: tuple[int, int] = (1, 1)

    def apply(self, g: Geometry) -> Geometry:
        axes = [
            (
                g.offset[a] + g.stride[a] * (self.dilation[a] * (self.kernel[a] - 1) / 2 - self.padding[a]),
                g.stride[a] * self.stride[a],
                g.receptive_field[a] + self.dilation[a] * (self.kernel[a] - 1) * g.stride[a],
            )
            for a in (0, 1)
        ]
        return Geometry(
            offset=(axes[0][0], axes[1][0]),
            stride=(axes[0][1], axes[1][1]),
            receptive_field=(axes[0][2], axes[1][2]),
            note=g.note,
        )


def graph_geometry(module: nn.Module, size: tuple[int, int]) -> dict[str, Geometry]:
    """The geometry of every spatial operation of ``module`` for a (height, width) pixel input.

    Keys are the operation names of :func:`cnn_engine.graph.graph_nodes` (``"input"``,
    ``"layer1.0.conv1"``...); operations whose output is not a (batch, channels, height, width)
    tensor are left out. Runs the model once on a zero image of that size (no gradients).
    """
    from .graph import INPUT, _trace

    graph, names, root = _trace(module)
    interpreter = _GeometryInterpreter(fx.GraphModule(root, graph), root)
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    height, width = int(size[0]), int(size[1])
    with torch.inference_mode(), contextlib.redirect_stderr(io.StringIO()):
        try:
            interpreter.run(torch.zeros(1, 3, height, width, device=device, dtype=dtype))
        except (RuntimeError, AssertionError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LayerError(f"{type(module).__name__} cannot run on a {width}x{height} px input ({first_line})") from exc
    result = {}
    for node, geometry in interpreter.geometry.items():
        name = names.get(node)
        if name is not None:
            result[INPUT if node.op == "placeholder" else name] = geometry
    return result


class _GeometryInterpreter(fx.Interpreter):
    """Runs the traced model and derives each 4-D output's geometry from its inputs'."""

    def __init__(self, graph_module: fx.GraphModule, root: nn.Module) -> None:
        super().__init__(graph_module)
        self.root = root
        self.geometry: dict[fx.Node, Geometry] = {}
        self._by_size: dict[tuple[int, int], Geometry] = {}
        self._hidden: dict[fx.Node, tuple[Geometry, tuple[int, int]]] = {}  # channels-last values and their cells

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        if isinstance(value, torch.Tensor) and value.dim() == 4 and not self._channels_last(n, value):
            geometry = INPUT_GEOMETRY if n.op == "placeholder" else self._derive(n, value)
            if geometry is not None:
                self.geometry[n] = geometry
                self._by_size[tuple(value.shape[2:])] = geometry
        return value

    def _channels_last(self, n: fx.Node, value: torch.Tensor) -> bool:
        """Follow (batch, height, width, channels) detours (ConvNeXt, Swin): their cells are the
        same as before the permute, kept aside until a permute brings channels first again."""
        dims = _permutation(n, self.fetch_args_kwargs_from_env(n)) if _is_permute(n) else None
        source = n.all_input_nodes[0] if n.all_input_nodes else None
        if dims == (0, 2, 3, 1) and source in self.geometry:
            self._hidden[n] = (self.geometry[source], tuple(value.shape[1:3]))
            return True
        if dims == (0, 3, 1, 2) and source in self._hidden:
            geometry, size = self._hidden[source]
            if size != tuple(value.shape[2:]):  # resized while channels-last (Swin's patch merging)
                geometry = self._resized(n, geometry, torch.empty(1, 1, *size), value)
            self.geometry[n] = geometry
            self._by_size[tuple(value.shape[2:])] = geometry
            return True
        hidden = [a for a in n.all_input_nodes if a in self._hidden]
        if hidden and not any(a in self.geometry for a in n.all_input_nodes):
            self._hidden[n] = self._hidden[hidden[0]]
            return True
        return False

    def _derive(self, n: fx.Node, value: torch.Tensor) -> Geometry | None:
        sources = [a for a in n.all_input_nodes if a in self.geometry]
        if not sources:
            return self._assumed_from_size(n, value)
        main = sources[0]
        window = self._window(n, self.env.get(main), value)
        if window is not None:
            return window.apply(self.geometry[main])
        shifted = self._padding_shift(n)
        if shifted is not None:
            g = self.geometry[main]
            return replace(g, offset=(g.offset[0] - shifted[0] * g.stride[0], g.offset[1] - shifted[1] * g.stride[1]))
        out_size = tuple(value.shape[2:])
        same = [a for a in sources if _spatial_size(self.env.get(a)) == out_size]
        if same:
            return _merge([self.geometry[a] for a in same], n.name)
        return self._resized(n, self.geometry[main], self.env.get(main), value)

    # -- the operations that move cells ----------------------------------------------------------

    def _window(self, n: fx.Node, source: Any, value: torch.Tensor) -> _Window | None:
        if n.op == "call_module":
            m = self.root.get_submodule(n.target)
            if isinstance(m, nn.Conv2d):
                return _Window(_pair(m.kernel_size), _pair(m.stride), _conv_padding(m.padding, m.kernel_size, m.dilation),
                               _pair(m.dilation))
            if isinstance(m, nn.MaxPool2d):
                return _Window(_pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding), _pair(m.dilation))
            if isinstance(m, nn.AvgPool2d):
                return _Window(_pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding))
            if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                return _adaptive(source, value)
            return None
        if n.op != "call_function":
            return None
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        target = n.target
        if target in (F.conv2d, torch.conv2d):
            p = _bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                      {"stride": 1, "padding": 0, "dilation": 1})
            kernel = tuple(int(v) for v in p["weight"].shape[-2:])
            return _Window(kernel, _pair(p["stride"]), _conv_padding(p["padding"], kernel, p["dilation"]), _pair(p["dilation"]))
        if target in (F.max_pool2d, torch.max_pool2d):
            p = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation"),
                      {"stride": None, "padding": 0, "dilation": 1})
            return _Window(_pair(p["kernel_size"]), _pair(p["stride"] or p["kernel_size"]), _pair(p["padding"]),
                           _pair(p["dilation"]))
        if target in (F.avg_pool2d, torch._C._nn.avg_pool2d):
            p = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding"), {"stride": None, "padding": 0})
            return _Window(_pair(p["kernel_size"]), _pair(p["stride"] or p["kernel_size"]), _pair(p["padding"]))
        if target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch._C._nn.adaptive_avg_pool2d):
            return _adaptive(source, value)
        return None

    def _padding_shift(self, n: fx.Node) -> tuple[float, float] | None:
        """Rows and columns added before the first cell by an explicit padding, else None."""
        if n.op == "call_module":
            m = self.root.get_submodule(n.target)
            pads = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)
            if isinstance(m, pads):
                left, _, top, _ = _four(m.padding)
                return (float(top), float(left))
            return None
        if n.op == "call_function" and n.target in (F.pad, torch._C._nn.pad):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            pad = list(kwargs.get("pad", args[1] if len(args) > 1 else ()))
            pad += [0] * (4 - len(pad))
            return (float(pad[2]), float(pad[0]))
        return None

    # -- what is assumed where the graph does not say ----------------------------------------------

    def _resized(self, n: fx.Node, g: Geometry, source: Any, value: torch.Tensor) -> Geometry:
        """A size-changing operation not understood: taken as a uniform resize of its input."""
        before = _spatial_size(source)
        after = tuple(value.shape[2:])
        if before is None:
            return replace(g, note=f"assumed after {n.name}: geometry of its input kept")
        factors = [before[a] / after[a] for a in (0, 1)]
        return Geometry(
            stride=tuple(g.stride[a] * factors[a] for a in (0, 1)),
            receptive_field=tuple(g.receptive_field[a] + (factors[a] - 1) * g.stride[a] for a in (0, 1)),
            offset=tuple(g.offset[a] + g.stride[a] * (factors[a] - 1) / 2 for a in (0, 1)),
            note=f"assumed: {n.name} ({_op_name(n, self.root)}) taken as a uniform resize",
        )

    def _assumed_from_size(self, n: fx.Node, value: torch.Tensor) -> Geometry | None:
        """An output of an operation on non-spatial values (a permute back to channels-first)."""
        known = self._by_size.get(tuple(value.shape[2:]))
        if known is None:
            return None
        return replace(known, note=f"assumed: {n.name} takes the last geometry seen at its size")


def _merge(geometries: Sequence[Geometry], name: str) -> Geometry:
    """Branches meeting (a residual sum): the widest receptive field is the cell's."""
    widest = max(geometries, key=lambda g: g.receptive_field[0] * g.receptive_field[1])
    notes = [g.note for g in geometries if g.note != EXACT]
    if any(g.stride != widest.stride or max(abs(g.offset[a] - widest.offset[a]) for a in (0, 1)) > 1e-6
           for g in geometries):
        notes.append(f"assumed at {name}: branches with different cell centres meet, the widest kept")
    return replace(widest, note=notes[0] if notes else widest.note)


def _adaptive(source: Any, output: Any) -> _Window | None:
    before, after = _spatial_size(source), _spatial_size(output)
    if before is None or after is None:
        return None
    if all(b % a == 0 for b, a in zip(before, after)):
        step = tuple(b // a for b, a in zip(before, after))
        return _Window(step, step, (0.0, 0.0))
    return None  # uneven bins: taken as a uniform resize by the caller, and said so


def _conv_padding(padding: Any, kernel: Any, dilation: Any) -> tuple[float, float]:
    kernel, dilation = _pair(kernel), _pair(dilation)
    if padding == "valid":
        return (0.0, 0.0)
    if padding == "same":  # PyTorch puts the odd pixel after (right/bottom)
        return tuple(float(dilation[a] * (kernel[a] - 1) // 2) for a in (0, 1))
    return tuple(float(v) for v in _pair(padding))


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1])) if len(value) else (0, 0)
    return (int(value), int(value))


def _four(value: Any) -> tuple[int, int, int, int]:
    if isinstance(value, int):
        return (value,) * 4
    return tuple(int(v) for v in value)


def _bind(args: tuple, kwargs: dict, names: Sequence[str], defaults: dict) -> dict:
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    return bound


def _is_permute(n: fx.Node) -> bool:
    return (n.op == "call_function" and n.target is torch.permute) or (n.op == "call_method" and n.target == "permute")


def _permutation(n: fx.Node, fetched: tuple[tuple, dict]) -> tuple[int, ...] | None:
    args, kwargs = fetched
    dims = kwargs.get("dims", args[1:] if n.op == "call_method" else (args[1] if len(args) > 1 else ()))
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    try:
        return tuple(int(d) % 4 for d in dims)
    except (TypeError, ValueError):
        return None


def _spatial_size(value: Any) -> tuple[int, int] | None:
    if isinstance(value, torch.Tensor) and value.dim() == 4:
        return tuple(int(v) for v in value.shape[2:])
    return None


def _op_name(n: fx.Node, root: nn.Module) -> str:
    if n.op == "call_module":
        return type(root.get_submodule(n.target)).__name__
    return getattr(n.target, "__name__", str(n.target))


def cells_for_pixels(pixels: int, offset: float, stride: float) -> "torch.Tensor":
    """Continuous cell coordinate (float64) of each of ``pixels`` input pixel centres on one axis.

    Pixel ``i`` is at cell coordinate ``(i - offset) / stride``: 0 on cell 0's centre, 1 on
    cell 1's. Used to draw a level on the input grid (see :mod:`cnn_engine.resample`).
    """
    return (torch.arange(pixels, dtype=torch.float64) - offset) / stride

