"""Shared test inputs: the sample photographs and models built once per session.

No test reaches the internet: TORCH_HOME points at an empty folder, so pretrained torchvision
weights are neither cached nor downloadable, as in CI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"

# Before torch.hub reads it: an empty cache for every test of the session.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="cnnvis-torch-home-")
torch.set_num_threads(min(2, os.cpu_count() or 1))

import cnn_engine  # noqa: E402


@pytest.fixture()
def cnnvis(capsys):
    """``cnnvis ARGS...`` in this process: its exit status and what it printed (a cli_runs.Result)."""
    from cli_runs import Result
    from cnn_engine.cli import main

    def run(*args: str) -> Result:
        status = main(list(args))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def cat_path() -> Path:
    return SAMPLES / "cat.jpg"


@pytest.fixture(scope="session")
def resnet50_random() -> "cnn_engine.CnnModel":
    return cnn_engine.load_model("resnet50", weights="random", device="cpu")


@pytest.fixture(scope="session")
def lite0() -> "cnn_engine.CnnModel":
    return cnn_engine.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def cat_volume(resnet50_random, cat_path) -> "cnn_engine.ActivationVolume":
    return cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=4)
