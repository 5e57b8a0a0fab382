"""How far to trust a map: deletion/insertion scores (RISE) and the model-randomisation check.

The trained offline model, EfficientNet-Lite0, on the cat photograph at a 112-pixel input
(168x112: a quarter of the pixels of the default, so four times faster) and few steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import cnn_engine
from cnn_engine.evidence import EvidenceSettings
from cnn_engine.faithfulness import (
    FaithfulnessError,
    area_under_curve,
    faithfulness,
    pixel_order,
    prior_map,
    random_map,
)
from cnn_engine.sanity import judge, randomised_copy, sanity_check, spearman

SIZE = 112
GRID = (112, 168)  # the cat's network input at SIZE: rows, columns


@pytest.fixture(scope="module")
def occlusion_volume(lite0, cat_path):
    return cnn_engine.compute_volume(lite0, cat_path, layers=["input"], top_k=1, input_size=SIZE,
                                     evidence=EvidenceSettings("occlusion", patch=32, stride=16))


@pytest.fixture(scope="module")
def occlusion_scores(lite0, cat_path, occlusion_volume):
    return faithfulness(lite0, cat_path, occlusion_volume, steps=8, input_size=SIZE)


def test_deletion_starts_at_the_clean_probability_and_insertion_ends_at_it(occlusion_scores, occlusion_volume):
    result = occlusion_scores
    assert result.clean_probability == pytest.approx(occlusion_volume.evidence_info.target_probability, rel=1e-4)
    for scores in (result.map, result.random, result.prior):
        assert scores.deletion_curve[0] == scores.insertion_curve[-1] == result.clean_probability
        assert scores.deletion_curve[-1] == scores.insertion_curve[0] == result.baseline_probability
    assert result.baseline_probability < 0.01  # the blurred cat is no cat any more
    assert np.array_equal(result.fractions, np.linspace(0, 1, 9))


def test_scores_are_the_areas_under_the_curves(occlusion_scores):
    result = occlusion_scores
    assert result.deletion == result.map.deletion == pytest.approx(np.trapz(result.map.deletion_curve, result.fractions))
    assert result.insertion == pytest.approx(np.trapz(result.map.insertion_curve, result.fractions))
    assert area_under_curve(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 0.5


def test_the_occlusion_map_beats_a_random_map_on_insertion(occlusion_scores):
    # Inserting what occlusion found first brings the cat back sooner than inserting random pixels.
    result = occlusion_scores
    print(f"occlusion insertion {result.insertion:.3f}, random {result.random.insertion:.3f}")
    assert result.target_label == "Egyptian cat"
    assert result.insertion > result.random.insertion + 0.2


def test_an_increasing_transformation_of_the_map_gives_the_same_scores(lite0, cat_path, occlusion_volume,
                                                                         occlusion_scores):
    # Only the order of the pixels counts.
    values = np.exp(3 * occlusion_volume.evidence.astype(np.float64)) + 7
    transformed = faithfulness(lite0, cat_path, values, steps=8, input_size=SIZE, references_from=occlusion_scores)
    assert np.array_equal(transformed.map.deletion_curve, occlusion_scores.map.deletion_curve)
    assert np.array_equal(transformed.map.insertion_curve, occlusion_scores.map.insertion_curve)
    assert transformed.random is occlusion_scores.random  # taken over, not measured again


def test_deleting_in_reverse_order_retraces_insertion_backwards(lite0, cat_path, occlusion_scores):
    # Removing the least salient pixels first leaves, after step k, the picture insertion shows
    # after step steps - k (a map without ties, 18816 pixels in 8 equal steps): here the
    # random map (seed 0) of the occlusion scores, reversed.
    backward = faithfulness(lite0, cat_path, -random_map(GRID, seed=0), steps=8, input_size=SIZE,
                            references_from=occlusion_scores)
    np.testing.assert_allclose(backward.map.deletion_curve, occlusion_scores.random.insertion_curve[::-1],
                               rtol=1e-5, atol=1e-7)


def test_the_same_seed_gives_the_same_random_map_and_another_seed_another(lite0, cat_path, occlusion_volume):
    first = faithfulness(lite0, cat_path, occlusion_volume, steps=2, input_size=SIZE, seed=5)
    again = faithfulness(lite0, cat_path, occlusion_volume, steps=2, input_size=SIZE, seed=5)
    other = faithfulness(lite0, cat_path, occlusion_volume, steps=2, input_size=SIZE, seed=6)
    assert np.array_equal(first.random.deletion_curve, again.random.deletion_curve)
    assert first.random.deletion != other.random.deletion
    assert np.array_equal(random_map(GRID, 5), random_map(GRID, 5))


def test_ties_are_broken_in_raster_order():
    assert pixel_order(np.zeros((2, 3))).tolist() == [0, 1, 2, 3, 4, 5]
    assert pixel_order(np.array([[1.0, 2.0], [2.0, 0.0]])).tolist() == [1, 2, 0, 3]


def test_the_prior_is_highest_at_the_centre_and_falls_with_distance():
    prior = prior_map((5, 7))
    assert prior[2, 3] == 1.0 and prior.argmax() == 2 * 7 + 3
    assert prior[2, 4] == prior[2, 2] > prior[2, 5] > prior[0, 0]


def test_a_map_of_another_shape_is_one_clear_error(lite0, cat_path):
    with pytest.raises(FaithfulnessError, match=r"the saliency map is 224x337 \(rows x columns\) but the image's "
                                                r"network input is 112x168: give a map on the input grid"):
        faithfulness(lite0, cat_path, np.zeros((224, 337)), input_size=SIZE)


def test_a_volume_made_at_another_input_size_is_refused(lite0, cat_path, occlusion_volume):
    with pytest.raises(FaithfulnessError, match="the volume was made from another picture than this image's "
                                                "337x224 network input"):
        faithfulness(lite0, cat_path, occlusion_volume)


@pytest.mark.parametrize("options, message", [
    ({"baseline": "black"}, "unknown baseline 'black': use one of blur, mean"),
    ({"steps": 0}, "steps must be a whole number of at least 1, not 0"),
    ({"saliency": np.full(GRID, np.nan)}, "the saliency map has 18816 NaN or infinite values"),
])
def test_bad_options_are_clear_errors(lite0, cat_path, options, message):
    arguments = {"saliency": np.zeros(GRID), "input_size": SIZE, **options}
    with pytest.raises(FaithfulnessError, match=message):
        faithfulness(lite0, cat_path, **arguments)


def test_references_from_another_target_are_refused(lite0, cat_path, occlusion_scores, occlusion_volume):
    with pytest.raises(FaithfulnessError, match="references_from holds scores of another model, image, target"):
        faithfulness(lite0, cat_path, occlusion_volume, target="tabby", steps=8, input_size=SIZE,
                     references_from=occlusion_scores)


def test_the_summary_says_which_way_is_better(occlusion_scores):
    text = "\n".join(occlusion_scores.summary())
    assert "deletion AUC" in text and "(lower is better; random map" in text
    assert "insertion AUC" in text and "(higher is better; random map" in text
    assert "against a random map: better on insertion" in text


def test_spearman_equals_scipys_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, (20, 30)).astype(float), rng.random((20, 30))
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).correlation, abs=1e-12)


@pytest.fixture(scope="module")
def copies(lite0):
    """The three randomised copies sanity_check makes by default (seeds 0, 1, 2)."""
    return [randomised_copy(lite0, seed) for seed in (0, 1, 2)]


def test_the_cam_map_passes_the_randomisation_check(lite0, cat_path, copies):
    check = sanity_check(lite0, cat_path, "cam", input_size=SIZE, randomised=copies)
    print("\n".join(check.summary()))
    assert check.passed is True and check.abs_rho < 0.5 and len(check.rhos) == 3
    assert check.verdict.startswith("passed: the map changed substantially when the weights were randomised")
    assert check.randomised_weights == tuple(f"re-initialised (seed {seed}) from packaged" for seed in (0, 1, 2))
    assert check.trained_map.shape == check.randomised_maps[0].shape == GRID


def test_the_check_judges_the_mean_absolute_correlation_a_flat_randomised_map_counting_0(lite0, cat_path, copies):
    check = sanity_check(lite0, cat_path, "cam", input_size=SIZE, randomised=copies[:2])
    first, second = check.rhos
    assert np.isnan(first) and np.ptp(check.randomised_maps[0]) == 0  # seed 0's CAM for the cat is all zero
    assert check.abs_rho == pytest.approx(abs(second) / 2)


def test_the_copies_are_seeded_seed_to_seed_plus_draws_minus_1(lite0, cat_path, copies):
    check = sanity_check(lite0, cat_path, "cam", input_size=SIZE, seed=1, draws=1)
    assert check.randomised_weights == ("re-initialised (seed 1) from packaged",)
    assert check.rhos == sanity_check(lite0, cat_path, "cam", input_size=SIZE, randomised=copies[1:2]).rhos


def test_a_map_that_does_not_depend_on_weights_fails_the_randomisation_check(cat_path):
    # A network without weights: randomising changes nothing, the occlusion map stays the same.
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten())  # 48 "classes": 3 colours x 4 x 4 cells
    check = sanity_check(pooled, cat_path, EvidenceSettings("occlusion", patch=32, stride=32), input_size=SIZE,
                         labels=[f"cell {i}" for i in range(48)])
    assert check.rhos == pytest.approx((1.0, 1.0, 1.0)) and check.passed is False
    assert check.verdict.startswith("FAILED: the map hardly changed when the weights were randomised "
                                    "(mean |rho| 1.00 >= 0.5)")


def test_a_flat_map_of_the_model_cannot_be_judged():
    assert judge(0.0, np.zeros((4, 4)), 0.5) == (None, "cannot judge: the model's own map is flat (no evidence "
                                                       "anywhere), so there is nothing to compare")


def test_the_randomised_copy_leaves_the_model_alone_and_is_reproducible(lite0):
    before = {name: value.clone() for name, value in lite0.module.state_dict().items()}
    copy = randomised_copy(lite0, seed=0)
    again = randomised_copy(lite0, seed=0)
    other = randomised_copy(lite0, seed=1)
    after = lite0.module.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    trained = dict(lite0.module.named_parameters())
    assert all(not torch.equal(trained[name], p) for name, p in copy.module.named_parameters())
    assert all(torch.equal(p, q) for p, q in zip(copy.module.parameters(), again.module.parameters()))
    assert not torch.equal(next(copy.module.parameters()), next(other.module.parameters()))
    assert copy.trained is False and lite0.trained is True
