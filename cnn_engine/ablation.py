"""Ablation: how much the target class's probability drops when channels of one layer are zeroed.

The measured counterpart of the ``effect`` ranking (a first-order estimate): for a graph
operation ``node`` (a torchvision node name, :attr:`cnn_engine.layers.LevelSpec.node`) the
channels of a set are set to zero in that operation's output and the rest of the network runs
on; the score of a channel is ``p_clean(t) - p_ablated(t)``, probabilities in [0, 1], so a
positive score means the channel supported class ``t``.

Cost: the network up to ``node`` (the *prefix*) runs once; only the operations after it (the
*suffix*) run again, on batches of ablated copies. Scoring every channel of a level costs about
``channels / batch_size`` batched suffix passes: seconds for a late level (ResNet-50 ``layer4``,
2048 channels on 7x11 cells), far more for an early level (its suffix is nearly the whole
network). The traced graph is the one :mod:`cnn_engine.graph` makes, so node names are the same.

Values that cross the cut (the ablated output, residual branches) are copied for each batch, so
in-place operations of the suffix (``ReLU(inplace=True)``, ``x += y``) cannot change what later
batches start from. Sizes read from the input before the cut (``x.size(0)`` for a final
``view``) are read again from the batch.
"""

from __future__ import annotations

import difflib
from typing import Callable, Sequence

import torch
from torch import fx, nn

from .errors import CnnEngineError, LayerError
from .graph import _trace
from .layers import LevelSpec
from .models import CnnModel, class_scores

#: Called as ``progress(done, total)`` with channels ablated so far and in all.
Progress = Callable[[int, int], None]


class AblationError(CnnEngineError):
    """An ablation cannot be run as asked (bad target class, input or batch size)."""


def ablated_probabilities(
    model: CnnModel,
    x: torch.Tensor,
    node: str,
    channel_sets: Sequence[Sequence[int]],
    target: int,
    batch_size: int = 32,
) -> torch.Tensor:
    """Probability of class ``target`` when, at operation ``node``, each set's channels are zeroed.

    ``x`` is the normalised network input (1, 3, H, W). Returns (len(channel_sets),) float32 on
    the CPU, one softmax probability in [0, 1] per set (an empty set gives the clean
    probability). Sets are run ``batch_size`` at a time. Raises :class:`LayerError` for an
    unknown node or a channel out of range, :class:`AblationError` for a bad target, input or
    batch size.
    """
    _check_batch_size(batch_size)
    sets = [_as_channels(s) for s in channel_sets]
    executor = _Executor(model.module)
    split = executor.split(_as_input(x, model), node)
    _check_channels(split, node, sets)
    with torch.inference_mode():
        parts = [split.probabilities(sets[i:i + batch_size], target) for i in range(0, len(sets), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float32)


def ablation_scores(
    model: CnnModel,
    x: torch.Tensor,
    levels: Sequence[LevelSpec],
    target: int,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> list[torch.Tensor]:
    """Per level, the (channels,) float32 drop ``p_clean(target) - p(target)`` with that one
    channel zeroed (probabilities in [0, 1]; CPU tensors, in level order).

    ``x`` is the normalised network input (1, 3, H, W). One trace and one clean forward pass,
    then per level one prefix pass and ``ceil(channels / batch_size)`` batched suffix passes.
    ``progress(done, total)`` is called after each batch, counting channels over all levels.
    """
    _check_batch_size(batch_size)
    executor = _Executor(model.module)
    x = _as_input(x, model)
    with torch.inference_mode():  # also checks the node names, before any long run
        clean_logits, shapes = executor.run_full(x, [level.node for level in levels])
    classes = int(clean_logits.shape[1])
    _check_target(classes, target)
    clean = float(torch.softmax(clean_logits[0].float(), dim=0)[target])
    for level in levels:
        shape = shapes[level.node]
        if shape is None:
            raise LayerError(f"operation {level.node!r} does not give a (1, channels, ...) map, "
                             "so it has no channels to ablate; choose a level of the volume")
    total = sum(shapes[level.node][1] for level in levels)
    done = 0
    scores = []
    for level in levels:
        split = executor.split(x, level.node)
        channels = split.channels
        probabilities = []
        with torch.inference_mode():
            for start in range(0, channels, batch_size):
                sets = [[c] for c in range(start, min(start + batch_size, channels))]
                probabilities.append(split.probabilities(sets, target))
                done += len(sets)
                if progress is not None:
                    progress(done, total)
        scores.append((clean - torch.cat(probabilities)).float())
    return scores


class _Split:
    """The model cut after one operation: what crosses the cut, and the suffix to run."""

    def __init__(self, executor: "_Executor", target: fx.Node, batched: dict[fx.Node, torch.Tensor],
                 constants: dict[fx.Node, object], plan: list[fx.Node]) -> None:
        self._executor = executor
        self._target = target
        self._batched = batched
        self._constants = constants
        self._plan = plan
        self._last_use = _last_uses(plan)
        self.value = batched[target]
        self.channels = int(self.value.shape[1])

    def probabilities(self, sets: Sequence[Sequence[int]], target: int) -> torch.Tensor:
        """Target probabilities (len(sets),) float32 on the CPU, one suffix pass for all sets."""
        count = len(sets)
        env: dict[fx.Node, object] = dict(self._constants)
        for node, value in self._batched.items():
            # Fresh copies for every batch: an in-place operation of the suffix would otherwise
            # write into the stored value (or fail on an expanded view of it).
            env[node] = value.repeat(count, *([1] * (value.dim() - 1)))
        ablated = env[self._target]
        for row, channels in enumerate(sets):
            if channels:
                ablated[row, list(channels)] = 0
        logits = self._executor.execute(self._plan, env, self._last_use)
        _check_target(int(logits.shape[1]), target)
        return torch.softmax(logits.float(), dim=1)[:, target].cpu()


class _Executor:
    """Runs the traced graph of a module operation by operation (what fx.GraphModule does, but
    stoppable after any node and resumable from a chosen set of values)."""

    def __init__(self, module: nn.Module) -> None:
        graph, names, root = _trace(module)
        self._root = root
        self.nodes: list[fx.Node] = list(graph.nodes)
        self._position = {node: i for i, node in enumerate(self.nodes)}
        self._by_name = {name: node for node, name in names.items()}
        self._modules = {n: root.get_submodule(n.target) for n in self.nodes if n.op == "call_module"}
        self._attrs = {n: _attribute(root, n.target) for n in self.nodes if n.op == "get_attr"}

    def node(self, name: str) -> fx.Node:
        """The graph node named ``name``; :class:`LayerError` listing close names otherwise."""
        node = self._by_name.get(name)
        if node is None:
            close = difflib.get_close_matches(name, list(self._by_name), n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise LayerError(
                f"unknown operation {name!r} to ablate{hint} (use a level's node name, as "
                f"model.levels(...)[i].node gives, or list them with: cnnvis layers --layers all)"
            )
        return node

    def run_full(self, x: torch.Tensor, watched: Sequence[str]) -> tuple[torch.Tensor, dict[str, tuple[int, ...] | None]]:
        """The logits of one plain pass, and the shape of each watched node's output
        (None where it is not a (1, channels, ...) tensor)."""
        watch = {self.node(name): name for name in watched}
        shapes: dict[str, tuple[int, ...] | None] = {}

        def seen(node: fx.Node, value: object) -> None:
            if node in watch:
                shapes[watch[node]] = tuple(value.shape) if _is_map(value) else None

        env = {self.nodes[0]: x.clone()}  # a model writing into its input must not change x
        logits = self.execute(self.nodes[1:], env, _last_uses(self.nodes[1:]), seen)
        for node, name in watch.items():
            if node.op == "placeholder":
                shapes[name] = tuple(x.shape)
        return logits, shapes

    def split(self, x: torch.Tensor, name: str) -> _Split:
        """Run the prefix up to and including node ``name`` on ``x`` and prepare the suffix."""
        target = self.node(name)
        cut = self._position[target]
        prefix, suffix = self.nodes[: cut + 1], self.nodes[cut + 1:]
        crossing = {n for n in prefix if any(self._position[u] > cut for u in n.users)} | {target}
        prefix_last = {}
        for i, n in enumerate(prefix):
            for a in n.all_input_nodes:
                prefix_last[a] = i
        env: dict[fx.Node, object] = {}
        from_input: set[fx.Node] = set()
        reread: list[fx.Node] = []  # input-dependent non-tensors (sizes): computed again per batch
        kept: set[fx.Node] = set()
        with torch.inference_mode():
            for i, n in enumerate(prefix):
                if n.op == "placeholder":
                    env[n] = x.clone()  # a model writing into its input must not change x
                    from_input.add(n)
                    continue
                env[n] = self._run(n, env)
                if any(a in from_input for a in n.all_input_nodes):
                    from_input.add(n)
                    if not isinstance(env[n], torch.Tensor):
                        reread.append(n)
                        kept.update(n.all_input_nodes)
                for a in n.all_input_nodes:
                    if prefix_last.get(a) == i and a not in crossing and a not in kept:
                        del env[a]
        needed = set(crossing)
        for n in reversed(reread):
            if n in needed:
                needed.update(n.all_input_nodes)
        batched: dict[fx.Node, torch.Tensor] = {}
        constants: dict[fx.Node, object] = {}
        for n in prefix:
            if n not in needed or (n in reread):
                continue
            value = env[n]
            if n in from_input:
                if not _is_map(value, channels=n is target):
                    described = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                    if n is target:
                        raise LayerError(
                            f"operation {name!r} gives {described}, not a (1, channels, ...) map: "
                            f"it has no channels to ablate; choose a level of the volume"
                        )
                    raise LayerError(
                        f"cannot ablate at {name!r}: operation {self._name_of(n)!r} before it, used after it, "
                        f"gives {described}, which is not batched along its first axis; choose another level"
                    )
                batched[n] = value
            else:
                constants[n] = value
        plan = [n for n in prefix if n in reread and n in needed] + suffix
        return _Split(self, target, batched, constants, plan)

    def execute(self, plan: Sequence[fx.Node], env: dict[fx.Node, object], last_use: dict[fx.Node, int],
                seen: Callable[[fx.Node, object], None] | None = None) -> torch.Tensor:
        """Run ``plan`` (nodes in graph order) from ``env``; returns the model's class scores.

        Values are freed after their last use in the plan, so a batch holds only the live ones.
        """
        for i, n in enumerate(plan):
            if n.op == "output":
                return _logits(fx.node.map_arg(n.args[0], lambda a: env[a]))
            env[n] = self._run(n, env)
            if seen is not None:
                seen(n, env[n])
            for a in n.all_input_nodes:
                if last_use.get(a) == i:
                    del env[a]
        raise CnnEngineError("the traced model has no output")

    def _run(self, n: fx.Node, env: dict[fx.Node, object]) -> object:
        args = fx.node.map_arg(n.args, lambda a: env[a])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
        if n.op == "call_module":
            return self._modules[n](*args, **kwargs)
        if n.op == "call_function":
            return n.target(*args, **kwargs)
        if n.op == "call_method":
            return getattr(args[0], n.target)(*args[1:], **kwargs)
        if n.op == "get_attr":
            return self._attrs[n]
        raise CnnEngineError(f"unexpected operation {n.op!r} in the traced model")

    def _name_of(self, node: fx.Node) -> str:
        return next((name for name, n in self._by_name.items() if n is node), node.name)


def _last_uses(plan: Sequence[fx.Node]) -> dict[fx.Node, int]:
    """For each value, the index in ``plan`` of the last node reading it."""
    last: dict[fx.Node, int] = {}
    for i, n in enumerate(plan):
        for a in n.all_input_nodes:
            last[a] = i
    return last


def _attribute(root: nn.Module, target: str) -> object:
    owner, _, name = target.rpartition(".")
    return getattr(root.get_submodule(owner) if owner else root, name)


def _is_map(value: object, channels: bool = True) -> bool:
    """A tensor batched along its first axis (one image), with a channel axis if ``channels``."""
    return isinstance(value, torch.Tensor) and value.dim() >= (2 if channels else 1) and value.shape[0] == 1


def _logits(output: object) -> torch.Tensor:
    scores = class_scores(output)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        raise AblationError("ablation needs a model returning class scores (batch, classes)")
    return scores


def _as_input(x: torch.Tensor, model: CnnModel) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1:
        described = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise AblationError(f"ablation takes one normalised image (1, 3, height, width), not {described}")
    return x.detach().to(model.device)


def _as_channels(channels: Sequence[int]) -> list[int]:
    if isinstance(channels, torch.Tensor):
        channels = channels.reshape(-1).tolist()
    try:
        return [int(c) for c in channels]
    except TypeError as exc:
        raise AblationError(f"a channel set must be a sequence of channel indices, not {channels!r}") from exc


def _check_channels(split: _Split, node: str, sets: Sequence[Sequence[int]]) -> None:
    for channels in sets:
        wrong = [c for c in channels if not 0 <= c < split.channels]
        if wrong:
            raise LayerError(
                f"channel {wrong[0]} is out of range for operation {node!r}, which has {split.channels} "
                f"channels: use indices 0 to {split.channels - 1}"
            )


def _check_target(classes: int, target: int) -> None:
    if not 0 <= int(target) < classes:
        raise AblationError(f"target class {target} is out of range: the model has {classes} classes (0 to {classes - 1})")


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) < 1:
        raise AblationError(f"batch size must be at least 1, not {batch_size}")
