"""Channel statistics over a labelled set (cnn_engine.statistics): the definitions on a network whose
responses are known, the numbers against a forward hook on a real network, exemplars and their
receptive fields, files, and what a set without enough classes says."""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image
from torch import nn

import cnn_engine
from cnn_engine.statistics import SPILL_BYTES, channel_statistics, read_channel_statistics

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class RedBlue(nn.Module):
    """conv: channel 0 copies the red value of the pixel under each cell's centre, channel 1 the
    blue one (3 x 3 kernel, stride 2, padding 1: cell (r, c) reads pixel (2r, 2c)); relu; a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = 1.0
            self.conv.weight[1, 2, 1, 1] = 1.0
        self.relu = nn.ReLU()
        self.head = nn.Linear(2, 3)

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).mean((2, 3)))


def _normalised(value: int, channel: int) -> float:
    """What the network sees of an 8-bit value, after ImageNet normalisation, rectified."""
    return max(0.0, (value / 255.0 - MEAN[channel]) / STD[channel])


RED = {"tabby": (255, 140, 200), "espresso": (150, 150)}  # red value of each solid image per class


def _solid_set(root, reds=RED, blue=30):
    for label, values in reds.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i, red in enumerate(values):
            Image.new("RGB", (64, 64), (red, 0, blue)).save(root / label / f"{label}{i}.png")
    return root


def _stats(folder, model=None, **options):
    options.setdefault("input_size", 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return channel_statistics(model or RedBlue(), folder, layers=["relu"], **options)


def test_class_means_are_the_means_of_each_class_images_spatial_means(tmp_path):
    stats = _stats(_solid_set(tmp_path))
    assert stats.classes == (281, 967)
    assert stats.class_names == ("tabby", "espresso")
    expected = [np.mean([_normalised(v, 0) for v in RED["tabby"]]), np.mean([_normalised(v, 0) for v in RED["espresso"]])]
    np.testing.assert_allclose(stats.class_mean[0][0], expected, rtol=1e-6)
    np.testing.assert_allclose(stats.class_std[0][0, 1], 0.0, atol=1e-7)  # two equal images


def test_selectivity_is_the_best_class_against_the_mean_of_the_rest(tmp_path):
    stats = _stats(_solid_set(tmp_path))
    best = np.mean([_normalised(v, 0) for v in RED["tabby"]])
    rest = _normalised(150, 0)
    assert stats.preferred_class[0][0] == 281
    assert stats.selectivity[0][0] == pytest.approx((best - rest) / (best + rest), rel=1e-6)


def test_auroc_is_the_share_of_class_and_rest_pairs_the_class_image_wins(tmp_path):
    stats = _stats(_solid_set(tmp_path))
    # tabby 255 and 200 beat both espresso images (150); tabby 140 loses to both: 4 of 6 pairs.
    assert stats.auroc[0][0] == pytest.approx(4 / 6)


def test_a_channel_silent_on_every_image_has_no_selectivity(tmp_path):
    stats = _stats(_solid_set(tmp_path))  # blue 30 is below the ImageNet mean: relu gives 0 everywhere
    assert math.isnan(stats.selectivity[0][1])
    assert stats.auroc[0][1] == 0.5  # all ties


def test_average_ranks_equal_scipys_for_every_column_ties_included():
    from scipy.stats import rankdata

    from cnn_engine.statistics import average_ranks

    values = np.random.default_rng(0).integers(0, 5, (40, 30)).astype(float)
    np.testing.assert_array_equal(average_ranks(values), rankdata(values, axis=0, method="average"))


def test_rows_give_one_record_per_level_and_channel(tmp_path):
    rows = _stats(_solid_set(tmp_path)).rows()
    assert [(row.level, row.channel) for row in rows] == [("relu", 0), ("relu", 1)]
    assert rows[0].preferred_class_name == "tabby"
    assert rows[0].images == 5


def test_exemplars_are_the_images_with_the_highest_maxima_one_per_image_in_order(tmp_path):
    stats = _stats(_solid_set(tmp_path), top_n=3)
    found = stats.exemplars("relu", 0)
    assert [e.image.rsplit("/", 1)[1] for e in found] == ["tabby0.png", "tabby2.png", "espresso0.png"]
    assert [e.value for e in found] == pytest.approx([_normalised(255, 0), _normalised(200, 0), _normalised(150, 0)],
                                                     rel=1e-6)
    assert found[2].position == 0  # of two equal espresso images, the first in the set


def test_an_exemplar_names_the_cell_of_the_maximum_and_its_receptive_field(tmp_path):
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[20, 36] = (255, 0, 0)
    (tmp_path / "set" / "tabby").mkdir(parents=True)
    Image.fromarray(picture).save(tmp_path / "set" / "tabby" / "spot.png")
    best = _stats(tmp_path / "set", top_n=1).exemplars(0, 0)[0]
    assert (best.row, best.col) == (10, 18)
    # A 3 x 3 field centred on pixel (20, 36): columns 35-37, rows 19-21 (x1, y1 exclusive).
    assert best.box == (35, 19, 38, 22)


def test_a_receptive_field_over_the_border_is_clipped_to_the_input(tmp_path):
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[0, 0] = (255, 0, 0)
    (tmp_path / "set" / "tabby").mkdir(parents=True)
    Image.fromarray(picture).save(tmp_path / "set" / "tabby" / "corner.png")
    best = _stats(tmp_path / "set", top_n=1).exemplars(0, 0)[0]
    assert best.box == (0, 0, 2, 2)
    assert best.field == (-1, -1, 2, 2)  # the whole 3 x 3 field, one pixel beyond the top and the left


def test_a_set_smaller_than_top_n_leaves_the_remaining_exemplar_slots_empty(tmp_path):
    stats = _stats(_solid_set(tmp_path), top_n=9)
    assert len(stats.exemplars(0, 0)) == 5
    assert list(stats.exemplar_position[0][0, 5:]) == [-1] * 4


def test_statistics_equal_forward_hooks_on_a_real_network(tmp_path, samples):
    model = cnn_engine.load_model("resnet18", weights="random", device="cpu")
    for label, name in (("tabby", "cat.jpg"), ("tabby", "astronaut.jpg"), ("espresso", "coffee.jpg"),
                        ("espresso", "rocket.jpg")):
        (tmp_path / label).mkdir(exist_ok=True)
        shutil.copy(samples / name, tmp_path / label / name)
    stats = channel_statistics(model, tmp_path, layers=["layer1.0", "layer3.1"], input_size=64, batch_size=3)
    seen = {}
    hooks = [model.module.get_submodule(name).register_forward_hook(
        lambda module, args, output, name=name: seen.__setitem__(name, output.mean((2, 3))[0].double().numpy()))
        for name in ("layer1.0", "layer3.1")]
    try:
        per_image = {}
        for path in stats.image_paths:
            loaded = cnn_engine.images.load_image(path)
            net_in = cnn_engine.preprocess.network_input(loaded.image, cnn_engine.preprocess.Preprocessing(size=64),
                                                         model.mean, model.std)
            with torch.no_grad():
                model.module(net_in.tensor)
            per_image[path] = dict(seen)
    finally:
        for hook in hooks:
            hook.remove()
    for level, name in enumerate(("layer1.0", "layer3.1")):
        for k, label in enumerate(("tabby", "espresso")):
            rows = [per_image[p][name] for p in stats.image_paths if f"/{label}/" in p]
            np.testing.assert_allclose(stats.class_mean[level][:, k], np.mean(rows, axis=0), rtol=1e-4, atol=1e-6)


def test_batch_size_does_not_change_the_statistics(tmp_path):
    folder = _solid_set(tmp_path)
    one, many = _stats(folder, batch_size=1), _stats(folder, batch_size=4)
    assert [(r.preferred_class, r.auroc) for r in one.rows()] == [(r.preferred_class, r.auroc) for r in many.rows()]
    assert one.exemplars(0, 0) == many.exemplars(0, 0)


def test_spilled_image_means_give_the_same_statistics(tmp_path, monkeypatch):
    folder = _solid_set(tmp_path)
    kept = _stats(folder)
    monkeypatch.setattr("cnn_engine.statistics.SPILL_BYTES", 0)  # every batch goes to the temporary file
    spilled = _stats(folder)
    np.testing.assert_array_equal(spilled.class_mean[0], kept.class_mean[0])
    assert SPILL_BYTES == 256 * 2**20


def test_the_netcdf_file_reads_back_the_same_statistics(tmp_path):
    stats = _stats(_solid_set(tmp_path / "set"), top_n=3)
    back = read_channel_statistics(stats.to_netcdf(tmp_path / "study.nc"))
    assert back.exemplars(0, 0) == stats.exemplars(0, 0)
    np.testing.assert_array_equal(back.class_mean[0], stats.class_mean[0])
    np.testing.assert_array_equal(back.auroc[0], stats.auroc[0])
    assert (back.classes, back.class_names, back.levels) == (stats.classes, stats.class_names, stats.levels)


def test_xarray_opens_the_file_with_named_dimensions(tmp_path):
    path = _stats(_solid_set(tmp_path / "set"), top_n=3).to_netcdf(tmp_path / "study.nc")
    with xr.open_dataset(path) as data:
        assert data["class_mean"].dims == ("level", "channel", "class")
        assert data["exemplar_box"].dims == ("level", "channel", "exemplar", "corner")
        assert list(data["class_name"].values) == ["tabby", "espresso"]
        assert data.attrs["cnnvis_kind"] == "channel_statistics"


def test_the_csv_table_has_a_header_and_one_line_per_channel(tmp_path):
    path = _stats(_solid_set(tmp_path / "set")).to_csv(tmp_path / "study.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "level,channel,preferred_class,preferred_class_name,selectivity,auroc,mean,images"
    assert lines[2].startswith("relu,1,") and ",," in lines[2]  # an undefined selectivity is an empty cell


def test_a_set_of_one_class_says_selectivity_is_undefined(tmp_path):
    folder = _solid_set(tmp_path, reds={"tabby": (255, 200)})
    with pytest.warns(UserWarning, match="one class only \\(tabby\\)"):
        stats = channel_statistics(RedBlue(), folder, layers=["relu"], input_size=64)
    assert math.isnan(stats.selectivity[0][0]) and math.isnan(stats.auroc[0][0])
    assert stats.preferred_class[0][0] == 281


def test_a_set_without_labels_gives_exemplars_only(tmp_path):
    folder = _solid_set(tmp_path, reds={"holiday": (255, 200)})
    with pytest.warns(UserWarning, match="no image of the set has a label"):
        stats = channel_statistics(RedBlue(), folder, layers=["relu"], input_size=64)
    assert stats.preferred_class[0][0] == -1
    assert len(stats.exemplars(0, 0)) == 2


def test_the_file_of_a_set_without_labels_reads_back_with_its_exemplars(tmp_path):
    folder = _solid_set(tmp_path / "set", reds={"holiday": (255, 200)})
    with pytest.warns(UserWarning, match="no image of the set has a label"):
        stats = channel_statistics(RedBlue(), folder, layers=["relu"], input_size=64)
    back = read_channel_statistics(stats.to_netcdf(tmp_path / "study.nc"))
    assert (list(back.classes), list(back.class_names)) == ([], [])
    assert back.exemplars(0, 0) == stats.exemplars(0, 0)


def test_a_class_of_one_image_has_no_standard_deviation(tmp_path):
    folder = _solid_set(tmp_path, reds={"tabby": (255, 200), "espresso": (150,)})
    with pytest.warns(UserWarning, match="1 class\\(es\\) with one image \\(espresso\\)"):
        stats = channel_statistics(RedBlue(), folder, layers=["relu"], input_size=64)
    assert math.isnan(stats.class_std[0][0, 1])


@pytest.mark.parametrize("call, message", [
    (lambda s: s.exemplars("layer9", 0), "level 'layer9' is not in this table: use one of relu"),
    (lambda s: s.exemplars("relu", 2), "channel 2 does not exist on level 'relu', which has channels 0 to 1"),
    (lambda s: s.exemplars(3, 0), "level 3 does not exist: use 0 to 0"),
])
def test_asking_for_a_level_or_channel_that_is_not_there_names_what_exists(tmp_path, call, message):
    stats = _stats(_solid_set(tmp_path))
    with pytest.raises(cnn_engine.CnnEngineError, match=message.replace("(", "\\(").replace(")", "\\)")):
        call(stats)


def test_top_n_out_of_range_is_refused(tmp_path):
    with pytest.raises(cnn_engine.CnnEngineError, match="top_n must be a whole number from 1 to 100, not 0"):
        _stats(_solid_set(tmp_path), top_n=0)


def test_a_set_whose_images_cannot_be_read_is_refused(tmp_path):
    (tmp_path / "tabby").mkdir()
    (tmp_path / "tabby" / "broken.png").write_bytes(b"not a picture")
    with pytest.raises(cnn_engine.CnnEngineError, match="no image of the set could be read \\(1 tried\\)"):
        _stats(tmp_path)


def test_an_unwritable_file_is_refused_before_anything_is_written(tmp_path):
    stats = _stats(_solid_set(tmp_path / "set"))
    with pytest.raises(cnn_engine.OutputError):
        stats.to_netcdf(tmp_path / "missing" / "study.nc")
    assert not (tmp_path / "missing").exists()
