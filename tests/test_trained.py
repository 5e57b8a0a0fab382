"""A trained network, offline: EfficientNet-Lite0 with the weights of its pip package."""

from __future__ import annotations

import cnn_engine

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968


def test_offline_model_is_trained_and_labelled(lite0):
    assert (lite0.name, lite0.weights, lite0.trained) == ("efficientnet_lite0", "packaged", True)


def test_cat_photograph_is_a_cat(lite0, cat_path):
    vol = cnn_engine.compute_volume(lite0, cat_path, top_k=1)
    assert vol.predictions[0].index in CAT_CLASSES


def test_coffee_photograph_is_espresso_or_cup(lite0, samples):
    vol = cnn_engine.compute_volume(lite0, samples / "coffee.jpg", top_k=1)
    assert vol.predictions[0].index in (ESPRESSO, CUP)
    assert vol.predictions[0].label in ("espresso", "cup")
