"""Levels: which layer outputs become the slices of the volume.

A *level* is one operation of the traced model (see :mod:`cnn_engine.graph`) whose output is a
spatial map (batch, channels, height, width). Levels are asked for by named layer set or by name:

``blocks``
    The network's building blocks: the input image, then each child of the model (each element
    of a top-level ``Sequential``/``ModuleList`` counts as a child), in execution order. Runs of
    single layers (conv, norm, activation, pooling) with the same height and width collapse to
    their last one, so a stem ``conv1 -> bn1 -> relu`` shows as ``relu`` and a VGG stage as its
    last ReLU. ResNet-50: ``input``, ``relu``, ``maxpool``,
    ``layer1.0`` ... ``layer4.2`` (19 levels).
``convs``
    The input, then the output of every ``Conv2d``.
``all``
    The input, then every operation whose output is spatial (more than one cell at the
    reference 224-pixel input, so global pooling is not a level), in execution order: ResNet-50
    has 172 such operations, 173 levels with the input.

A list of names takes operation names (``layer1.0.relu_2``, ``layer1.0.add``) and module names
(``layer1.0``: the output of the last operation inside that module).
"""

from __future__ import annotations

import contextlib
import difflib
import io
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import nn

from .errors import LayerError
from .graph import INPUT, GraphNode, graph_nodes, instrument, module_nodes

from .options import LAYER_SETS  # noqa: F401  (options owns the names)

#: What ``layers=`` accepts: a layer set name, one layer name, or a list of layer names.
LayerSelection = Union[str, Sequence[str]]

#: Side in pixels of the square input used to decide which operations are spatial.
REFERENCE_SIZE = 224


@dataclass(frozen=True)
class LevelSpec:
    """A requested level: its name, the graph operation behind it, and the operation's type."""

    name: str
    node: str
    layer_type: str


class LayerCatalog:
    """The operations a model offers as levels, with their output shapes at the reference size."""

    def __init__(self, module: nn.Module, model_name: str = "") -> None:
        self.model_name = model_name or type(module).__name__
        self._module = module
        self.nodes: list[GraphNode] = graph_nodes(module)
        self._index = {node.name: i for i, node in enumerate(self.nodes)}
        self.reference_shapes = probe_shapes(module, [n.name for n in self.nodes], REFERENCE_SIZE)
        self._modules = {name for name, _ in module.named_modules() if name}
        self._resolved: dict[tuple[str, ...], list[LevelSpec]] = {}

    def is_spatial(self, node_name: str) -> bool:
        shape = self.reference_shapes.get(node_name)
        return shape is not None and len(shape) == 4 and shape[2] * shape[3] > 1

    def resolve(self, layers: LayerSelection) -> list[LevelSpec]:
        """Turn a layer set name or a list of names into levels, in the order asked for.

        Raises :class:`LayerError` for unknown names (listing close matches) and for layers
        without a spatial output.
        """
        key = (layers,) if isinstance(layers, str) else tuple(layers)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(layers)
        return list(self._resolved[key])

    def _resolve(self, layers: LayerSelection) -> list[LevelSpec]:
        if isinstance(layers, str):
            if layers in LAYER_SETS:
                return getattr(self, f"_{layers}")()
            layers = [part.strip() for part in layers.split(",") if part.strip()]
        if not layers:
            raise LayerError(f"no layers asked for: give a layer set ({', '.join(LAYER_SETS)}) or layer names")
        levels, seen = [], set()
        for name in layers:
            if name in seen:
                continue
            seen.add(name)
            node = self._node_for(name)
            if not self.is_spatial(node.name):
                shape = self.reference_shapes.get(node.name)
                described = "x".join(map(str, shape[1:])) if shape else "not a tensor"
                raise LayerError(
                    f"layer {name!r} of {self.model_name} has no spatial output "
                    f"(its output is {described} at {REFERENCE_SIZE} px), so it cannot be a level of the volume"
                )
            levels.append(LevelSpec(name=name, node=node.name, layer_type=self._type_of(name, node)))
        return levels

    def _node_for(self, name: str) -> GraphNode:
        if name in self._index:
            return self.nodes[self._index[name]]
        owned = module_nodes(self.nodes, name) if name in self._module_names() else []
        if owned:
            return owned[-1]
        candidates = list(LAYER_SETS) + [n.name for n in self.nodes] + sorted(self._module_names())
        close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise LayerError(
            f"unknown layer {name!r} in {self.model_name}{hint} "
            f"(list them with: cnnvis layers --model {self.model_name} --layers all)"
        )

    def _type_of(self, name: str, node: GraphNode) -> str:
        if name != node.name and name in self._module_names():
            return type(self._module.get_submodule(name)).__name__
        return node.layer_type

    def _module_names(self) -> set[str]:
        return self._modules

    def _input(self) -> LevelSpec:
        return LevelSpec(name=INPUT, node=INPUT, layer_type=INPUT)

    def _all(self) -> list[LevelSpec]:
        rest = [LevelSpec(n.name, n.name, n.layer_type) for n in self.nodes[1:] if self.is_spatial(n.name)]
        return [self._input()] + rest

    def _convs(self) -> list[LevelSpec]:
        found: list[tuple[int, LevelSpec]] = []
        for name, conv in self._module.named_modules():
            if not isinstance(conv, nn.Conv2d):
                continue
            owned = module_nodes(self.nodes, name)
            leaf_calls = [n for n in owned if n.module == name and n.layer_type == type(conv).__name__]
            if leaf_calls:
                picks = [(n.name, n) for n in leaf_calls]
            elif owned:  # a Conv2d subclass that fx traced through (padding, then F.conv2d)
                picks = [(name, owned[-1])]
            else:
                picks = []
            found += [(self._index[n.name], LevelSpec(level, n.name, type(conv).__name__)) for level, n in picks]
        found.sort(key=lambda item: item[0])
        return [self._input()] + [spec for _, spec in found if self.is_spatial(spec.node)]

    def _blocks(self) -> list[LevelSpec]:
        entries: list[tuple[int, str, bool]] = []  # (execution index, level name, is a single layer)
        for name, child in _top_children(self._module):
            owned = module_nodes(self.nodes, name)
            if not owned:
                continue
            single = _is_single_layer(child)
            if single and any(n.name != name for n in owned) and all(n.module == name for n in owned):
                # A layer called several times (one activation module reused): each call is a level.
                entries += [(self._index[n.name], n.name, True) for n in owned]
            else:
                entries.append((self._index[owned[-1].name], name, single))
        entries.sort()
        spatial = [e for e in entries if self.is_spatial(self.nodes[e[0]].name)]
        kept = []
        for i, (index, name, single) in enumerate(spatial):
            following = spatial[i + 1] if i + 1 < len(spatial) else None
            same_size = following is not None and (
                self.reference_shapes[self.nodes[index].name][2:]
                == self.reference_shapes[self.nodes[following[0]].name][2:]
            )
            if single and following is not None and following[2] and same_size:
                continue  # folded into the next single layer of the same height and width
            node = self.nodes[index]
            kept.append(LevelSpec(name=name, node=node.name, layer_type=self._type_of(name, node)))
        return [self._input()] + kept


def _top_children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    children = []
    for name, child in module.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
            children += [(f"{name}.{sub}", grandchild) for sub, grandchild in child.named_children()]
        else:
            children.append((name, child))
    return children


def _is_single_layer(module: nn.Module) -> bool:
    """True for a module with at most one parameterised part (a conv, a norm, an activation)."""
    with_parameters = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    return len(with_parameters) <= 1


def probe_shapes(
    module: nn.Module, names: Sequence[str], size: int | tuple[int, int]
) -> dict[str, tuple[int, ...] | None]:
    """Output shape of each named operation for a zero image of ``size`` pixels.

    ``size`` is the side of a square input, or (height, width) in pixels, for example the grid
    :func:`cnn_engine.preprocess.fitted_size` gives an image. Shapes are (batch, channels,
    height, width) for spatial outputs; ``None`` for non-tensors.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    shapes: dict[str, tuple[int, ...] | None] = {}

    def record(index: int, value: object) -> None:
        shapes[names[index]] = tuple(value.shape) if isinstance(value, torch.Tensor) else None

    instrumented = instrument(module, list(names))
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.inference_mode():
        try:
            # torch.fx prints the generated code of a failing graph to stderr: the error says enough.
            with contextlib.redirect_stderr(io.StringIO()):
                instrumented(torch.zeros(1, 3, height, width, device=device), record)
        except (RuntimeError, AssertionError) as exc:  # a traced graph with fixed sizes (vit_*, maxvit_t)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LayerError(
                f"{type(module).__name__} cannot run on a {width}x{height} px input ({first_line}); "
                "try a 224x224 input (fit center-crop)"
            ) from exc
    return shapes
