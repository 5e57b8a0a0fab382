"""Models by name, every kind of weights, and every way weights can be wrong."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
import torchvision

import cnn_engine
from cnn_engine import ModelError, WeightsError, WeightsUnavailableError
from cnn_engine.weights import hub_checkpoint_path, load_state_dict_file


@pytest.mark.parametrize(
    "name, levels",
    [("resnet18", 11), ("resnet50", 19), ("vgg16", 7), ("efficientnet_b0", 10), ("mobilenet_v3_small", 14)],
)
def test_torchvision_families_give_a_volume(name, levels, cat_path):
    model = cnn_engine.load_model(name, weights="random", device="cpu")
    vol = cnn_engine.compute_volume(model, cat_path, layers="blocks", top_k=2)
    assert len(vol.levels) == levels
    assert vol.arrays["rank0"].shape == (levels, 224, 337)
    assert len(vol.predictions) == 5


def test_random_weights_are_seeded_and_marked_untrained():
    first = cnn_engine.load_model("resnet18", weights="random", device="cpu")
    second = cnn_engine.load_model("resnet18", weights="random", device="cpu")
    other = cnn_engine.load_model("resnet18", weights="random", device="cpu", seed=1)
    w = lambda m: m.module.conv1.weight  # noqa: E731
    assert torch.equal(w(first), w(second)) and not torch.equal(w(first), w(other))
    assert (first.trained, first.weights) == (False, "random (seed 0)")


def test_random_weights_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    cnn_engine.load_model("resnet18", weights="random", device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_resnet50_default_weights_are_the_original_imagenet1k_v1(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as error:
        cnn_engine.load_model("resnet50", device="cpu")
    message = str(error.value)
    assert "resnet50 IMAGENET1K_V1" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in message
    assert not (tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth").exists()


def test_cached_pretrained_weights_load_without_network(monkeypatch, tmp_path):
    # Put a state dict where torchvision's mechanism looks for IMAGENET1K_V1: it must be used.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    source = cnn_engine.load_model("resnet18", weights="random", device="cpu", seed=7)
    cached = hub_checkpoint_path(url)
    cached.parent.mkdir(parents=True)
    torch.save(source.module.state_dict(), cached)
    model = cnn_engine.load_model("resnet18", weights="IMAGENET1K_V1", device="cpu")
    assert model.weights == "IMAGENET1K_V1" and model.trained
    assert torch.equal(model.module.conv1.weight, source.module.conv1.weight)
    assert model.categories[281] == "tabby"


def test_weights_enum_spelling_with_class_prefix_is_accepted(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="resnet50 IMAGENET1K_V2"):
        cnn_engine.load_model("resnet50", weights="ResNet50_Weights.IMAGENET1K_V2", device="cpu")


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match=r"unknown model 'resnet5'; did you mean .*resnet50"):
        cnn_engine.load_model("resnet5")


def test_unknown_weights_name_lists_the_choices():
    with pytest.raises(WeightsError, match=r"unknown weights 'IMAGENET9K' for resnet50: use one of IMAGENET1K_V1, IMAGENET1K_V2"):
        cnn_engine.load_model("resnet50", weights="IMAGENET9K")


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.fail("this test documents the CPU-only machines of CI; it cannot run with a GPU present")
    with pytest.raises(ModelError, match="CUDA is not available here"):
        cnn_engine.load_model("resnet18", weights="random", device="cuda")


def test_local_state_dict_file_loads(tmp_path):
    source = cnn_engine.load_model("resnet18", weights="random", device="cpu", seed=3)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": source.module.state_dict(), "epoch": 12}, path)
    model = cnn_engine.load_model("resnet18", weights=str(path), device="cpu")
    assert model.weights == f"file:{path.resolve()}"
    assert torch.equal(model.module.fc.weight, source.module.fc.weight)


def test_torchscript_file_loads_when_trusted(tmp_path):
    source = cnn_engine.load_model("resnet18", weights="random", device="cpu", seed=4)
    path = tmp_path / "scripted.pt"
    torch.jit.script(source.module).save(str(path))
    model = cnn_engine.load_model("resnet18", weights=str(path), device="cpu", trust_torchscript=True)
    assert torch.equal(model.module.layer1[0].conv1.weight, source.module.layer1[0].conv1.weight)


class _WritesOnLoad(torch.nn.Module):
    """A TorchScript module whose loading writes a file: TorchScript runs __setstate__ on load."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(1))
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, str, bool]:
        return self.weight, self.marker, self.training

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, str, bool]) -> None:
        self.weight, self.marker, self.training = state
        torch.save(self.weight, self.marker)  # any file write: the code of the archive runs


def _archive_writing_on_load(tmp_path: Path) -> tuple[Path, Path]:
    """(TorchScript archive, the marker file its loading writes), the marker not yet there."""
    marker, path = tmp_path / "code-ran", tmp_path / "scripted.pt"
    torch.jit.script(_WritesOnLoad(str(marker))).save(str(path))
    marker.unlink(missing_ok=True)  # saving ran __setstate__ already
    return path, marker


def test_the_hostile_torchscript_archive_runs_its_code_when_trusted(tmp_path):
    # The premise of the refusal test below: loading this archive really runs code.
    path, marker = _archive_writing_on_load(tmp_path)
    assert list(load_state_dict_file(path, trust_torchscript=True)) == ["weight"]
    assert marker.exists()


def test_torchscript_is_refused_by_default_and_none_of_its_code_runs(tmp_path):
    path, marker = _archive_writing_on_load(tmp_path)
    with pytest.raises(WeightsError) as error:
        cnn_engine.load_model("resnet18", weights=str(path), device="cpu")
    assert str(error.value) == (
        f"refusing to load {path}: it is a TorchScript archive, and loading one runs code stored in it. Re-save "
        "its weights as a plain state dict (torch.save(model.state_dict(), path)); or, if you trust its source, "
        "opt in with --trust-torchscript (cnnvis), TrustTorchScript (ParaView) or trust_torchscript=True (Python)"
    )
    assert not marker.exists()


def test_weights_of_another_model_are_refused(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(cnn_engine.load_model("resnet18", weights="random", device="cpu").module.state_dict(), path)
    with pytest.raises(WeightsError, match=r"do not fit resnet50: .* missing entries .*unexpected entries|do not fit resnet50: wrong shapes"):
        cnn_engine.load_model("resnet50", weights=str(path))


def test_random_bytes_are_not_a_weights_file(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(WeightsError, match=r"not a PyTorch weights file.*noise\.pth"):
        cnn_engine.load_model("resnet18", weights=str(path))


class _RunsCode:
    """Unpickling this calls os.system: a weights file must never do that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _RunsCode(marker)}, path)
    with pytest.raises(WeightsError, match=r"refusing to load .*evil\.pth: .*could run code"):
        cnn_engine.load_model("resnet18", weights=str(path))
    assert not marker.exists()


def test_plain_pickle_file_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pkl.pth"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(WeightsError, match=r"evil\.pkl\.pth"):
        cnn_engine.load_model("resnet18", weights=str(path))
    assert not marker.exists()


def test_empty_and_missing_weights_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match=r"weights file is empty"):
        cnn_engine.load_model("resnet18", weights=str(tmp_path / "empty.pth"))
    with pytest.raises(WeightsError, match=r"weights file not found"):
        cnn_engine.load_model("resnet18", weights=str(tmp_path / "gone.pth"))


def test_available_models_include_the_offline_model():
    names = cnn_engine.available_models()
    assert "resnet50" in names and "efficientnet_lite0" in names and "vgg16" in names


def test_volume_support_marks_cnns_full_and_transformers_not():
    from cnn_engine.models import volume_support

    assert volume_support("resnet50") == ("full", "")
    assert volume_support("efficientnet_lite0") == ("full", "")
    assert volume_support("vit_b_16")[0] == volume_support("swin_v2_t")[0] == "no"
    assert volume_support("convnext_tiny")[0] == volume_support("maxvit_t")[0] == "partial"


def _channels_first(model, levels) -> list[bool]:
    """Per level: the channel axis stays and the width axis follows the input (224 wide, then 160)."""
    from cnn_engine.layers import probe_shapes

    square = probe_shapes(model.module, [lv.node for lv in levels], (224, 224))
    narrow = probe_shapes(model.module, [lv.node for lv in levels], (224, 160))
    return [square[lv.node][1] == narrow[lv.node][1] and square[lv.node][3] != narrow[lv.node][3] for lv in levels]


def test_swin_levels_are_channels_last_so_no_full_volume():
    model = cnn_engine.load_model("swin_t", weights="random", device="cpu")
    levels = model.levels("blocks")
    assert _channels_first(model, levels).count(False) == 9  # features.0 ... norm: (batch, height, width, channels)


def test_vit_has_only_the_patch_embedding_as_a_level():
    model = cnn_engine.load_model("vit_b_16", weights="random", device="cpu")
    assert [lv.name for lv in model.levels("all")] == ["input", "conv_proj"]


def test_resnet50_levels_are_all_channels_first(resnet50_random):
    assert all(_channels_first(resnet50_random, resnet50_random.levels("all")))


def test_default_model_falls_back_to_the_trained_offline_model_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = cnn_engine.load_default_model(device="cpu")
    assert (model.name, model.weights, model.trained) == ("efficientnet_lite0", "packaged", True)
    assert model.substitution == ("efficientnet_lite0 (trained, offline) runs instead of resnet50: the ImageNet "
                                  "weights of resnet50 are not in the torch cache and cannot be downloaded here")


def test_default_model_is_resnet50_when_its_weights_are_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = cnn_engine.load_model("resnet50", weights="random", device="cpu", seed=3)
    cached = hub_checkpoint_path(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url)
    cached.parent.mkdir(parents=True)
    torch.save(source.module.state_dict(), cached)
    model = cnn_engine.load_default_model(device="cpu")
    assert (model.name, model.weights, model.substitution) == ("resnet50", "IMAGENET1K_V1", None)


def test_load_model_never_swaps_and_its_error_names_the_offline_model(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as error:
        cnn_engine.load_model("resnet50", device="cpu")
    assert "use the trained model efficientnet_lite0, whose ImageNet weights are installed with cnnvis" in str(error.value)


def test_a_substituted_model_is_recorded_in_the_volume(monkeypatch, tmp_path, cat_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = cnn_engine.load_default_model(device="cpu")
    vol = cnn_engine.compute_volume(model, cat_path, top_k=1)
    assert vol.extra == {"substitution": model.substitution}
    assert vol.provenance.model == "efficientnet_lite0"


def test_default_model_name_says_which_model_would_run_without_building_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert cnn_engine.models.default_model_name() == "efficientnet_lite0"
    cached = hub_checkpoint_path(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url)
    assert cached.parent.is_dir() and not cached.exists()  # the failed download left no file
    torch.save(cnn_engine.load_model("resnet50", weights="random", device="cpu").module.state_dict(), cached)
    assert cnn_engine.models.default_model_name() == "resnet50"
