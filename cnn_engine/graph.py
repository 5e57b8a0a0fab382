"""The model as a graph of named operations, and running it with a callback after chosen ones.

torch.fx traces the model once into a flat list of operations; torchvision's ``NodePathTracer``
names each after its place in the module tree (``layer1.0.conv1``, ``layer1.0.relu_2`` for the
third call of ``layer1.0.relu``, ``layer1.0.add`` for the residual sum), the names torchvision's
feature extractor uses. :func:`instrument` then inserts a call to a *sink* right after each
chosen operation, so every layer output is handed over the moment it exists and freed as soon as
the network no longer needs it: nothing holds all layer outputs at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torchvision
from torch import fx, nn
from torchvision.models.feature_extraction import NodePathTracer

from .errors import ModelError

#: Name of the level holding the network input itself.
INPUT = "input"

#: Called as ``sink(level_index, value)`` right after the operation of that level ran.
Sink = Callable[[int, torch.Tensor], None]


@dataclass(frozen=True)
class GraphNode:
    """One operation of the traced model.

    ``name`` is the torchvision node name (``"input"`` for the network input), ``layer_type``
    the module class (``Conv2d``) or function name (``add``), ``module`` the name of the module
    that ran it (``""`` for operations of the top-level ``forward``).
    """

    name: str
    layer_type: str
    module: str


def _tracer() -> NodePathTracer:
    # torchvision's feature extractor keeps torchvision.ops modules (Conv2dNormActivation,
    # SqueezeExcitation...) as leaves, which hides the convolutions inside them. Every torchvision
    # classification model traces through them (checked for all of them with torchvision 0.29),
    # so only the math/ops function wrapping is kept.
    return NodePathTracer(autowrap_modules=(math, torchvision.ops))


def _trace(module: nn.Module) -> tuple[fx.Graph, dict[fx.Node, str], nn.Module]:
    tracer = _tracer()
    was_training = module.training
    module.eval()
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises many types for untraceable Python control flow
        raise ModelError(f"cannot trace {type(module).__name__} into a graph of layers: {exc}") from exc
    finally:
        module.train(was_training)
    names = dict(tracer.node_to_qualname)
    for node in graph.nodes:
        if node.op == "placeholder":
            names[node] = INPUT
            break
    return graph, names, tracer.root


def graph_nodes(module: nn.Module) -> list[GraphNode]:
    """All operations of ``module`` in execution order, the network input first."""
    graph, names, root = _trace(module)
    nodes = []
    for node in graph.nodes:
        name = names.get(node)
        if name is None or node.op == "output":
            continue
        nodes.append(GraphNode(name=name, layer_type=_layer_type(node, root), module=_module_of(node, name)))
    return nodes


def _layer_type(node: fx.Node, root: nn.Module) -> str:
    if node.op == "placeholder":
        return INPUT
    if node.op == "call_module":
        return type(root.get_submodule(node.target)).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return str(node.target)


def _module_of(node: fx.Node, name: str) -> str:
    if node.op == "call_module":
        return str(node.target)
    return name.rsplit(".", 1)[0] if "." in name else ""


def instrument(module: nn.Module, targets: Sequence[str]) -> fx.GraphModule:
    """Trace ``module`` and call a sink after each operation named in ``targets``.

    The result is called as ``graph_module(x, sink)`` and returns what the model returns;
    ``sink(i, value)`` receives the output of ``targets[i]`` (``"input"`` is the input tensor).
    Target names must come from :func:`graph_nodes`.
    """
    graph, names, root = _trace(module)
    by_name = {name: node for node, name in names.items()}
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    with graph.inserting_after(placeholders[-1]):
        sink = graph.placeholder("cnn_engine_sink")
    # Insert in reverse so that several calls placed after the same anchor keep target order.
    for index in reversed(range(len(targets))):
        target = targets[index]
        if target not in by_name:
            raise ModelError(f"operation {target!r} is not in the traced graph of {type(module).__name__}")
        node = by_name[target]
        with graph.inserting_after(sink if node.op == "placeholder" else node):
            graph.call_method("__call__", (sink, index, node))
    graph.lint()
    return fx.GraphModule(root, graph, class_name=f"Instrumented{type(module).__name__}")


def module_nodes(nodes: Sequence[GraphNode], module_name: str) -> list[GraphNode]:
    """The operations that belong to module ``module_name`` (its own calls and its children's)."""
    repeated = re.compile(rf"{re.escape(module_name)}(_[0-9]+)?$")
    prefix = module_name + "."
    return [n for n in nodes if repeated.match(n.name) or n.name.startswith(prefix)]
