"""Test-time augmentation: the views and what evaluation reports."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.predict.tta import make_view, view_specs


def test_views_start_with_the_image_and_mirror_only_when_allowed():
    assert view_specs(1, flip=True) == [{}]
    assert view_specs(2, flip=True) == [{}, {"flip": True}]
    assert not any(v.get("flip") for v in view_specs(8, flip=False))
    assert len(view_specs(8, flip=False)) == 7  # every view without a flip


def test_views_are_the_stated_warps():
    images = np.random.default_rng(0).uniform(0, 255, (2, 20, 20, 3)).astype(np.float32)
    assert make_view(images, {}) is images
    np.testing.assert_allclose(make_view(images, {"flip": True}), images[:, :, ::-1], atol=1e-3)
    shifted = make_view(images, {"shift_x": 0.05})  # one pixel of 20
    np.testing.assert_allclose(shifted[:, :, :-1], images[:, :, 1:], atol=1e-3)
    assert make_view(images, {"zoom": 0.9}).shape == images.shape


@pytest.mark.slow
def test_tta_of_one_is_plain_prediction_and_evaluation_reports_both(trained_run, two_class_data):
    from gender_cls.data.images import load_image
    from gender_cls.evaluation.evaluate import evaluate
    from gender_cls.predict.predictor import Predictor

    paths = sorted(str(p) for p in (two_class_data / "test").rglob("*.png"))
    plain = Predictor(trained_run.run_dir).predict_files(paths)
    np.testing.assert_array_equal(Predictor(trained_run.run_dir, tta=1).predict_files(paths), plain)
    four = Predictor(trained_run.run_dir, tta=4)  # the run's TFLite export
    assert not four.tta_flip  # trained without flips
    averaged = four.predict_files(paths)
    assert averaged.shape == plain.shape and not np.allclose(averaged, plain)
    images = np.stack([load_image(p, 64) for p in paths]).astype(np.float32)
    one = Predictor(trained_run.run_dir)
    by_hand = np.mean([one.predict_arrays(make_view(images, s)) for s in view_specs(4, False)], 0)
    np.testing.assert_allclose(averaged, by_hand, atol=1e-6)
    with_tta = evaluate(trained_run.run_dir, two_class_data / "test", tta=4)
    without = evaluate(trained_run.run_dir, two_class_data / "test")
    assert with_tta.metrics["tta"]["views"] == 4
    assert with_tta.metrics["tta"]["without_tta"]["accuracy"] == without.metrics["accuracy"]
