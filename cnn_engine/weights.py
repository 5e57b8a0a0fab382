"""Finding and safely loading model weights.

Three kinds of weights: torchvision's named pretrained weights (``IMAGENET1K_V1``...), fetched
from torchvision's address into the torch hub cache like torchvision does itself; ``random``
(seeded, reproducible, untrained); or a local file, a state dict or a TorchScript archive.
State dicts are always read with ``torch.load(..., weights_only=True)``: a pickle that would run
code is refused, never unpickled. A TorchScript archive is code (loading it runs its
``__setstate__`` methods, and ``torch.jit.load`` has no safe mode), so it is refused unless the
caller trusts it explicitly (``trust_torchscript=True``).
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import torch
from torch import nn

from .errors import WeightsError, WeightsUnavailableError

RANDOM = "random"


def looks_like_path(weights: str) -> bool:
    """True when ``weights`` names a file rather than a weights enum or ``random``."""
    return os.sep in weights or weights.endswith((".pt", ".pth", ".ckpt", ".bin")) or Path(weights).exists()


def hub_checkpoint_path(url: str) -> Path:
    """Where torchvision keeps the file downloaded from ``url`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def fetch_pretrained(url: str, description: str) -> dict[str, torch.Tensor]:
    """The state dict behind ``url``: from the torch hub cache, downloading it if missing.

    The download shows a progress bar on stderr. Raises :class:`WeightsUnavailableError` when
    the file is not cached and cannot be downloaded, saying where to put it.
    """
    return load_state_dict_file(cached_pretrained(url, description))


def cached_pretrained(url: str, description: str) -> Path:
    """The torch hub cache file of ``url``, downloaded first if missing (see :func:`fetch_pretrained`)."""
    path = hub_checkpoint_path(url)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # torch.hub's own downloader: a temporary file renamed into place when complete.
            torch.hub.download_url_to_file(url, str(path), progress=True)
        except Exception as exc:  # URLError, socket and SSL errors, HTTP errors
            reason = getattr(exc, "reason", None) or exc
            raise WeightsUnavailableError(
                f"cannot download the {description} weights ({reason}). Without internet: copy the file "
                f"{path.name} (from {url}) to {path}; or use the trained model efficientnet_lite0, whose "
                "ImageNet weights are installed with cnnvis; or give a local weights file, or random weights"
            ) from None
    return path


def load_state_dict_file(path: str | os.PathLike, trust_torchscript: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``torch.save`` file, or from a TorchScript archive if trusted.

    A ``torch.save`` file is read without running code. A TorchScript archive runs code stored
    in it while loading, so it is refused with a :class:`WeightsError` unless
    ``trust_torchscript`` is True. A checkpoint dict that wraps the weights under ``state_dict``
    or ``model`` is unwrapped. Raises :class:`WeightsError` naming what is wrong with the file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"weights file is empty (0 bytes): {path}")
    if _is_torchscript(path):
        if not trust_torchscript:
            raise WeightsError(
                f"refusing to load {path}: it is a TorchScript archive, and loading one runs code stored in it. "
                "Re-save its weights as a plain state dict (torch.save(model.state_dict(), path)); or, if you "
                "trust its source, opt in with --trust-torchscript (cnnvis), TrustTorchScript (ParaView) or "
                "trust_torchscript=True (Python)"
            )
        try:
            with warnings.catch_warnings():
                # The user opted in: torch's notice that TorchScript is deprecated is not theirs to act on.
                warnings.simplefilter("ignore", FutureWarning)
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except Exception as exc:
            raise WeightsError(f"cannot read TorchScript weights file {path}: {exc}") from None
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc) or "Unsupported global" in str(exc):
            raise WeightsError(
                f"refusing to load {path}: it holds Python objects beyond tensors, and unpickling it "
                "could run code. Save a plain state dict (torch.save(model.state_dict(), path))"
            ) from None
        raise WeightsError(f"not a PyTorch weights file (not a tensor archive torch.load can read safely): {path}") from None
    except (RuntimeError, EOFError, ValueError, OSError, UnicodeDecodeError, AttributeError) as exc:
        raise WeightsError(f"not a PyTorch weights file (or it is damaged): {path} ({exc})") from None
    return _unwrap_state_dict(loaded, path)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def _unwrap_state_dict(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
        tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        if tensors:
            # Checkpoints saved from DataParallel prefix every key with "module."
            if all(k.startswith("module.") for k in tensors):
                tensors = {k[len("module."):]: v for k, v in tensors.items()}
            return tensors
    raise WeightsError(f"{path} holds no state dict (a mapping of parameter names to tensors)")


def apply_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str, model_name: str) -> None:
    """Load ``state_dict`` into ``module`` strictly; a foreign file is a :class:`WeightsError`."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise WeightsError(
            f"weights {source} do not fit {model_name}: {len(missing)} missing entries"
            f"{_examples(missing)}, {len(unexpected)} unexpected entries{_examples(unexpected)}"
            " (were they saved from another model?)"
        )
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} instead of {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise WeightsError(f"weights {source} do not fit {model_name}: wrong shapes for {'; '.join(wrong[:3])}")
    module.load_state_dict(state_dict, strict=True)


def _examples(keys: list[str]) -> str:
    return f" (e.g. {', '.join(keys[:3])})" if keys else ""
