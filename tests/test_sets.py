"""Image sets through the engine: batched volumes, set-wide channels and ranges, explicit channels,
bad images, the summary (cnn_engine.sets, cnn_engine.summary)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import cnn_engine
from cnn_engine.sets import compute_volumes, parse_channel_list, scan_set

LEVELS = "layer1.0,layer3.1,layer4.1"
SIZE = 64


@pytest.fixture(scope="module")
def resnet18():
    return cnn_engine.load_model("resnet18", weights="random", device="cpu")


@pytest.fixture()
def photo_set(tmp_path, samples):
    """Four photographs in an ImageFolder layout: a tabby (WordNet ID), an espresso (class name),
    two without a known class."""
    for folder, name in (("n02123045", "cat.jpg"), ("espresso", "coffee.jpg"), ("misc", "rocket.jpg"),
                         ("misc", "astronaut.jpg")):
        (tmp_path / "set" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(samples / name, tmp_path / "set" / folder / name)
    return _quiet_set(tmp_path / "set")


def _quiet_set(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'misc' matches no class: reported by ImageSet's own tests
        return cnn_engine.ImageSet(folder)


def _volumes(model, images, **options):
    return list(compute_volumes(model, images, layers=LEVELS, input_size=SIZE, **options))


def test_each_batched_volume_equals_the_single_image_volume(resnet18, photo_set):
    volumes = _volumes(resnet18, photo_set, batch_size=3)
    for volume, path in zip(volumes, photo_set.paths):
        single = cnn_engine.compute_volume(resnet18, path, layers=LEVELS, input_size=SIZE)
        assert volume.levels == single.levels
        assert volume.predictions == single.predictions
        for name in single.arrays:
            np.testing.assert_array_equal(volume.arrays[name], single.arrays[name])


def test_volumes_name_their_image_position_and_true_label(resnet18, photo_set):
    volumes = _volumes(resnet18, photo_set)
    assert [v.provenance.image_path for v in volumes] == [str(p) for p in photo_set.paths]
    assert [v.provenance.set_index for v in volumes] == [0, 1, 2, 3]
    assert [v.provenance.true_label for v in volumes] == list(photo_set.labels)
    assert [v.provenance.true_label_name for v in volumes] == list(photo_set.label_names)


def test_set_channels_are_the_top_k_of_the_mean_score_over_the_set(resnet18, photo_set):
    every = [cnn_engine.compute_volume(resnet18, p, layers="layer3.1", top_k=256, input_size=SIZE)
             for p in photo_set.paths]
    mean_score = np.zeros(256)
    for volume in every:
        mean_score[list(volume.levels[0].channels)] += np.array(volume.levels[0].scores) / len(every)
    expected = tuple(int(c) for c in np.argsort(-mean_score, kind="stable")[:4])
    volumes = _volumes(resnet18, photo_set, channels="set")
    assert {v.levels[1].channels for v in volumes} == {expected}


def test_set_normalisation_maps_each_level_of_the_set_onto_zero_to_one(resnet18, photo_set):
    volumes = _volumes(resnet18, photo_set, channels="set", normalization="set")
    # (image, level): the pictures differ in aspect ratio, so the grids differ in width
    lows = np.array([[np.nanmin([v.arrays[f"rank{k}"][i] for k in range(4)]) for i in range(3)] for v in volumes])
    highs = np.array([[np.nanmax([v.arrays[f"rank{k}"][i] for k in range(4)]) for i in range(3)] for v in volumes])
    np.testing.assert_allclose(lows.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(highs.max(axis=0), 1.0, atol=1e-6)
    assert (highs < 1 - 1e-6).any()  # not each image on its own
    assert {v.normalization for v in volumes} == {"set"}


def test_set_normalisation_of_per_image_channels_uses_each_image_s_own_channels(resnet18, photo_set):
    raw = _volumes(resnet18, photo_set)
    scaled = _volumes(resnet18, photo_set, normalization="set")
    for level in range(3):
        low = min(v.levels[level].raw_min for v in raw)
        high = max(v.levels[level].raw_max for v in raw)
        for before, after in zip(raw, scaled):
            np.testing.assert_allclose(after.arrays["rank0"][level], (before.arrays["rank0"][level] - low) / (high - low),
                                       rtol=1e-5, atol=1e-6)


def test_explicit_channels_choose_levels_and_channels(resnet18, photo_set):
    volumes = _volumes(resnet18, photo_set, channels="layer4.1:7,3;layer1.0:5")
    for volume in volumes:
        assert [(level.name, level.channels) for level in volume.levels] == [("layer1.0", (5, -1)), ("layer4.1", (7, 3))]
        assert np.isnan(volume.arrays["rank1"][0]).all()


def test_a_channel_list_is_parsed_into_levels_and_indices():
    assert parse_channel_list(" layer4.2:12, 40 ; features.3:7") == {"layer4.2": (12, 40), "features.3": (7,)}


@pytest.mark.parametrize("text", ["layer4.2", "layer4.2:", "layer4.2:a", "layer4.2:-1", "", "x:1;x:2"])
def test_a_bad_channel_list_is_refused_with_the_expected_form(text):
    with pytest.raises(cnn_engine.CnnEngineError, match="LEVEL:CHANNEL|listed twice"):
        parse_channel_list(text)


def test_only_the_asked_indices_are_computed_in_their_order(resnet18, photo_set):
    volumes = _volumes(resnet18, photo_set, indices=[3, 1])
    assert [v.provenance.set_index for v in volumes] == [3, 1]


def test_a_bad_image_is_reported_once_and_the_set_goes_on(resnet18, photo_set, tmp_path):
    bad = tmp_path / "set" / "misc" / "broken.jpg"
    bad.write_bytes(b"not a picture")
    images = _quiet_set(tmp_path / "set")
    reported = []
    volumes = _volumes(resnet18, images, channels="set", normalization="set",
                       on_error=lambda path, error: reported.append((path, str(error))))
    assert [path for path, _ in reported] == [str(bad)]
    assert "not an image file" in reported[0][1]
    assert len(volumes) == len(images) - 1


def test_a_set_of_only_bad_images_is_refused_by_name(resnet18, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"")
    with pytest.raises(cnn_engine.CnnEngineError, match="no image of the set could be read"):
        scan_set(resnet18, [tmp_path / "bad.jpg"], layers=LEVELS, input_size=SIZE, on_error=lambda *a: None)


def test_set_channels_refuse_a_class_ranking(resnet18, photo_set):
    with pytest.raises(cnn_engine.CnnEngineError, match="not by effect"):
        _volumes(resnet18, photo_set, channels="set", rank_by="effect")


def test_a_scan_is_reused_while_model_files_and_options_are_the_same(resnet18, photo_set):
    first = scan_set(resnet18, photo_set, layers=LEVELS, input_size=SIZE)
    assert scan_set(resnet18, photo_set, layers=LEVELS, input_size=SIZE) is first
    assert scan_set(resnet18, photo_set, layers=LEVELS, input_size=SIZE, top_k=2) is not first


def test_progress_counts_both_passes_on_one_scale(resnet18, photo_set):
    steps = []
    _volumes(resnet18, photo_set, channels="set", top_k=3, progress=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (8, 8)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)


def test_evidence_runs_image_by_image_with_the_set_s_channels(resnet18, photo_set):
    volumes = _volumes(resnet18, photo_set, channels="set", evidence="gradcam")
    assert len({v.levels[2].channels for v in volumes}) == 1
    assert all(v.evidence is not None and v.provenance.true_label_name for v in volumes)


def test_summary_counts_accuracy_and_confusion_with_the_trained_model(lite0, photo_set):
    summary = cnn_engine.SetSummary()
    for volume in compute_volumes(lite0, photo_set, layers="_blocks.15"):
        summary.add(volume)
    # The offline model calls the tabby an Egyptian cat (tabby is in its top 5) and the coffee an espresso.
    assert (summary.count, summary.labelled) == (4, 2)
    assert (summary.top1_accuracy, summary.top5_accuracy) == (0.5, 1.0)
    assert summary.confusion == {"n02123045": {"Egyptian cat": 1}, "espresso": {"espresso": 1}}
    assert summary.lines()[1] == "top-1 accuracy 50.0% (1/2), top-5 accuracy 100.0% (2/2)"


def test_read_ahead_keeps_the_order_and_raises_errors_in_order():
    from cnn_engine.runner import read_ahead

    def numbers():
        yield from range(5)
        raise cnn_engine.CnnEngineError("the sixth failed")

    seen = []
    with pytest.raises(cnn_engine.CnnEngineError, match="the sixth failed"):
        for value in read_ahead(numbers(), 2):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_stops_and_closes_the_producer_when_the_caller_stops():
    import threading

    from cnn_engine.runner import read_ahead

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    ahead = read_ahead(endless(), 3)
    assert [next(ahead) for _ in range(4)] == [0, 1, 2, 3]
    ahead.close()
    assert closed.is_set()
    assert not any(t.name == "cnnvis-ahead" for t in threading.enumerate())
