"""Perturbation sweeps (cnn_engine.sweep, cnn_engine.sweep_files): what each step measures, the
science checks of the issue with the offline trained model, files, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import cnn_engine
from cnn_engine.sweep import sweep
from cnn_engine.sweep_files import read_sweep_table

LEVELS = ["_swish", "_blocks.2", "_blocks.8", "_swish_1"]


@pytest.fixture(scope="module")
def blur(lite0, cat_path):
    return sweep(lite0, cat_path, "blur", [0, 1, 2, 4, 8], layers=LEVELS, target="tiger cat")


def test_the_clean_step_has_zero_drift_and_the_models_usual_prediction(blur, lite0, cat_path):
    usual = cnn_engine.compute_volume(lite0, cat_path, layers=LEVELS)
    clean = blur.steps[0]
    assert clean.drift == (0.0,) * len(LEVELS) and clean.relative_l2 == (0.0,) * len(LEVELS)
    assert [p.index for p in clean.predictions] == [p.index for p in usual.predictions]
    assert clean.clean_probability == pytest.approx(usual.predictions[0].probability, rel=1e-5)
    assert (blur.clean_class, blur.clean_label) == (usual.predictions[0].index, usual.predictions[0].label)


def test_stronger_blur_never_lowers_the_drift_of_the_first_levels(blur):
    for level in range(2):
        drift = [step.drift[level] for step in blur.steps]
        assert drift == sorted(drift), (blur.levels[level], drift)
        assert drift[-1] > 0


def test_every_step_records_the_target_probability(blur):
    assert blur.target_label == "tiger cat"
    assert all(0 < step.target_probability < 1 for step in blur.steps)


def test_predictions_equal_compute_volume_on_the_perturbed_picture_saved_and_reloaded(blur, lite0, tmp_path):
    for i, picture in enumerate(blur.images):
        path = tmp_path / f"step{i}.png"
        Image.fromarray(picture).save(path)
        again = cnn_engine.compute_volume(lite0, path, layers=LEVELS)
        assert [(p.index, round(p.probability, 5)) for p in blur.steps[i].predictions] == \
               [(p.index, round(p.probability, 5)) for p in again.predictions]


def test_every_step_shows_the_clean_pictures_channels(blur):
    clean = [level.channels for level in blur.volume(0).levels]
    for i in range(1, len(blur.steps)):
        assert [level.channels for level in blur.volume(i).levels] == clean
    assert blur.channels == {level.name: level.channels for level in blur.volume(0).levels}


def test_a_volume_computed_later_equals_the_one_kept(lite0, cat_path, blur):
    lazy = sweep(lite0, cat_path, "blur", [0, 1, 2, 4, 8], layers=LEVELS, volumes=False)
    np.testing.assert_array_equal(lazy.volume(3).arrays["rank0"], blur.volume(3).arrays["rank0"])


@pytest.fixture(scope="module")
def cat_on_the_left(samples, tmp_path_factory):
    """The cat on the left half of a plain grey 448 x 224 picture."""
    canvas = Image.new("RGB", (448, 224), (128, 128, 128))
    canvas.paste(Image.open(samples / "cat.jpg").convert("RGB").resize((224, 224)), (0, 0))
    path = tmp_path_factory.mktemp("occlusion") / "cat_left.png"
    canvas.save(path)
    return path


@pytest.mark.parametrize("occluder", ["mean", "blur", "noise"])
def test_occluding_the_object_costs_more_probability_than_occluding_the_background(lite0, cat_on_the_left, occluder):
    # A 160 px patch hides most of the cat (a 112 px mean patch on its face alone did not lower the
    # probability of its class, Egyptian cat: the other cat classes share the evidence).
    def probability(position):
        run = sweep(lite0, cat_on_the_left, "occlusion", [0, 160], layers=LEVELS[:1], position=position,
                    occluder=occluder)
        return run.steps[1].clean_probability

    assert probability((112, 112)) < probability((336, 112))


def test_flip_severity_is_the_step_nearest_the_clean_picture_that_changes_the_top1_class(blur):
    changed = [step.severity for step in blur.steps if step.top1.index != blur.clean_class]
    assert blur.flip_severity == (min(changed) if changed else None)


def test_the_netcdf_file_holds_the_steps_as_time_and_the_table(blur, tmp_path):
    path = blur.to_netcdf(tmp_path / "blur.nc")
    table = read_sweep_table(path)
    assert list(table["severity"]) == [0, 1, 2, 4, 8]
    np.testing.assert_allclose(table["drift"], np.asarray([s.drift for s in blur.steps]))
    assert table["label"][3] == blur.steps[3].label
    assert table["levels"] == LEVELS
    volumes = table["volumes"]
    assert len(volumes) == 5
    np.testing.assert_array_equal(volumes[2].arrays["rank0"], blur.volume(2).arrays["rank0"])


def test_the_same_sweep_writes_the_same_file(lite0, cat_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    paths = [sweep(lite0, cat_path, "noise", [0, 0.1], layers=LEVELS, seed=3).to_netcdf(tmp_path / f"{i}.nc")
             for i in range(2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_the_csv_table_has_one_row_per_step(blur, tmp_path):
    lines = blur.to_csv(tmp_path / "blur.csv").read_text().splitlines()
    assert lines[0].startswith("severity,label,clean_probability,target_probability,top1_index,top1_label")
    assert lines[0].endswith(",".join(f"drift {name}" for name in LEVELS))
    assert len(lines) == 6


def test_an_unknown_perturbation_lists_the_known_ones(lite0, cat_path):
    with pytest.raises(cnn_engine.CnnEngineError, match="brightness.*occlusion"):
        sweep(lite0, cat_path, "fog", [0, 1])


def test_a_severity_out_of_range_says_the_range(lite0, cat_path):
    with pytest.raises(cnn_engine.CnnEngineError, match="blur"):
        sweep(lite0, cat_path, "blur", [0, -3])


@pytest.mark.parametrize("values", [[2], [2, 2, 2]])
def test_a_single_severity_is_refused(lite0, cat_path, values):
    with pytest.raises(cnn_engine.CnnEngineError, match="a sweep needs at least two different severities, not 1"):
        sweep(lite0, cat_path, "blur", values)


def test_an_image_that_cannot_be_read_is_refused_before_anything_runs(lite0, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    with pytest.raises(cnn_engine.ImageError):
        sweep(lite0, tmp_path / "broken.png", "blur", [0, 1])


def test_asking_for_a_step_that_does_not_exist_names_the_range(blur):
    with pytest.raises(cnn_engine.CnnEngineError, match="step 5 does not exist: the sweep has steps 0 to 4"):
        blur.volume(5)



def test_for_jpeg_the_flip_severity_is_the_highest_quality_that_changes_the_top1_class(lite0, cat_path):
    run = sweep(lite0, cat_path, "jpeg", [1, 5, 10, 50, 100], layers=LEVELS[:1])
    changed = [step.severity for step in run.steps if step.top1.index != run.clean_class]
    assert changed and run.flip_severity == max(changed)  # nearest quality 100, the mildest end
