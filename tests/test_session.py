"""A Session re-runs only what a changed request needs."""

from __future__ import annotations

import pytest

from cnn_engine import ImageError
from cnn_engine.session import Session, VolumeRequest


@pytest.fixture()
def request_(cat_path):
    return VolumeRequest(image=str(cat_path), model="resnet18", weights="random", device="cpu", top_k=2)


def test_same_request_does_not_run_the_network_again(request_):
    session = Session()
    first = session.volume(request_)
    second = session.volume(request_)
    assert second is first
    assert (session.forward_passes, session.model_builds) == (1, 1)


def test_level_spacing_changes_the_volume_without_a_forward_pass(request_):
    from dataclasses import replace

    session = Session()
    session.volume(request_)
    spaced = session.volume(replace(request_, level_spacing=3.0))
    assert spaced.level_spacing == 3.0
    assert session.forward_passes == 1


def test_new_image_runs_the_network_but_keeps_the_model(request_, samples):
    from dataclasses import replace

    session = Session()
    session.volume(request_)
    session.volume(replace(request_, image=str(samples / "coffee.jpg")))
    assert (session.forward_passes, session.model_builds) == (2, 1)


def test_new_weights_rebuild_the_model(request_):
    from dataclasses import replace

    session = Session()
    session.volume(request_)
    session.volume(replace(request_, weights="random", model="resnet34"))
    assert (session.forward_passes, session.model_builds) == (2, 2)


def test_a_failed_request_leaves_the_session_usable(request_, tmp_path):
    from dataclasses import replace

    session = Session()
    with pytest.raises(ImageError):
        session.volume(replace(request_, image=str(tmp_path / "missing.jpg")))
    assert session.volume(request_).shape[0] == 11


def test_grid_is_known_before_the_network_runs(request_):
    session = Session()
    assert session.grid(request_) == (11, 224, 337, 224 / 11)
    assert session.forward_passes == 0
    volume = session.volume(request_)
    assert session.grid(request_)[:3] == volume.shape


def test_grid_matches_every_fit(request_, samples):
    from dataclasses import replace

    session = Session()
    for fit in ("short-side", "center-crop", "native"):
        changed = replace(request_, image=str(samples / "grace_hopper.jpg"), fit=fit, input_size=200)
        assert session.grid(changed)[:3] == session.volume(changed).shape, fit


def test_offline_allowed_default_request_runs_the_offline_model_and_its_grid(cat_path):
    # conftest points TORCH_HOME at an empty cache: resnet50's ImageNet weights cannot be had.
    request = VolumeRequest(image=str(cat_path), model="resnet50", device="cpu", top_k=1, allow_offline=True)
    session = Session()
    levels, height, width, _ = session.grid(request)
    assert session.model_builds == 0  # the grid needs no model, only which one will run
    volume = session.volume(request)
    assert (levels, height, width) == volume.shape == (19, 224, 337)
    assert volume.provenance.model == "efficientnet_lite0" and "substitution" in volume.extra
    assert session.current_model.name == "efficientnet_lite0"
    assert (session.model_builds, session.forward_passes) == (1, 1)


def test_offline_is_never_allowed_for_explicit_weights(cat_path):
    from cnn_engine import WeightsUnavailableError

    request = VolumeRequest(image=str(cat_path), model="resnet50", weights="IMAGENET1K_V1", device="cpu",
                            allow_offline=True)
    with pytest.raises(WeightsUnavailableError):
        Session().volume(request)


def test_target_class_does_not_run_the_network_while_there_is_no_evidence(request_):
    from dataclasses import replace

    session = Session()
    first = session.volume(request_)
    for target in ("tabby", "281", 7, None):
        assert session.volume(replace(request_, target=target)) is first
    assert session.forward_passes == 1


def test_target_class_runs_the_network_again_with_evidence(request_):
    from dataclasses import replace

    session = Session()
    with_cam = replace(request_, evidence="cam")
    assert session.volume(replace(with_cam, target=281)).evidence_info.target_index == 281
    assert session.volume(replace(with_cam, target=7)).evidence_info.target_index == 7
    assert session.forward_passes == 2


def test_auto_device_and_the_device_it_resolves_to_share_the_model_and_volume(request_):
    import torch
    from dataclasses import replace

    resolved = "cuda" if torch.cuda.is_available() else "cpu"
    session = Session()
    first = session.volume(replace(request_, device="auto"))
    assert session.volume(replace(request_, device=resolved)) is first
    assert (session.forward_passes, session.model_builds) == (1, 1)


def test_trusting_torchscript_changes_nothing_for_weights_that_are_not_a_file(request_):
    from dataclasses import replace

    session = Session()
    first = session.volume(request_)
    assert session.volume(replace(request_, trust_torchscript=True)) is first
    assert (session.forward_passes, session.model_builds) == (1, 1)


def test_a_weights_file_saved_again_at_the_same_path_is_read_again(request_, tmp_path):
    import os
    from dataclasses import replace

    import torch

    import cnn_engine

    path = tmp_path / "weights.pth"
    torch.save(cnn_engine.load_model("resnet18", weights="random", seed=1).module.state_dict(), path)
    session = Session()
    first = session.volume(replace(request_, weights=str(path)))
    torch.save(cnn_engine.load_model("resnet18", weights="random", seed=2).module.state_dict(), path)
    os.utime(path, ns=(0, 10**18))  # a new modification time even on a coarse file system clock
    second = session.volume(replace(request_, weights=str(path)))
    assert (session.forward_passes, session.model_builds) == (2, 2)
    assert first.levels[-1].scores != second.levels[-1].scores  # the new weights ran
