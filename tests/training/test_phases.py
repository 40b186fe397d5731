"""Phases: plans, losses, optimizers, schedules, callbacks and the log line."""

from __future__ import annotations

import keras
import pytest

from gender_cls.config import ModelConfig, RunConfig, TrainConfig
from gender_cls.training.phases import make_loss, plan_phases


def test_focal_losses_are_the_keras_built_ins():
    config = TrainConfig(loss="focal", focal_alpha=0.25, focal_gamma=2.0)
    binary = make_loss(config, 2)
    assert type(binary) is keras.losses.BinaryFocalCrossentropy
    assert binary.alpha == 0.25 and binary.gamma == 2.0
    assert type(make_loss(config, 4)) is keras.losses.CategoricalFocalCrossentropy


def test_phase_plan():
    scratch = plan_phases(RunConfig(model=ModelConfig(weights="none")))
    assert [p.name for p in scratch] == ["scratch"]
    two = plan_phases(RunConfig(train=TrainConfig(fine_tune_epochs=3, fine_tune_layers="12")))
    assert [(p.name, p.unfreeze) for p in two] == [("head", None), ("fine_tune", "12")]
    assert two[1].lr == 1e-5
    skipped = RunConfig(train=TrainConfig(fine_tune_epochs=3, fine_tune_layers="0"))
    assert [p.name for p in plan_phases(skipped)] == ["head"]


def test_optimizer_options_build_the_stated_keras_optimizers():
    from gender_cls.training.phases import Phase, make_optimizer

    head = Phase("head", 5, 1e-3, None)
    adamw = make_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.05), head, 10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.05
    sgd = make_optimizer(TrainConfig(optimizer="sgd", ema=True), head, 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    assert sgd.use_ema and not make_optimizer(TrainConfig(), head, 10).use_ema
    plain = make_optimizer(TrainConfig(), head, 10)
    assert type(plain) is keras.optimizers.Adam and plain.weight_decay is None
    assert float(plain.learning_rate) == pytest.approx(1e-3)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from gender_cls.training.phases import Phase, make_optimizer

    phase = Phase("scratch", 12, 0.01, "all", True, schedule="cosine")
    optimizer = make_optimizer(TrainConfig(warmup_epochs=2), phase, 10)
    schedule = optimizer._learning_rate  # Keras keeps the schedule object here
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    lr = [float(schedule(step)) for step in (0, 10, 20, 70, 120)]
    assert lr[0] == 0.0 and lr[1] == pytest.approx(0.005) and lr[2] == pytest.approx(0.01)
    assert lr[2] > lr[3] > lr[4] and lr[4] == pytest.approx(0.0, abs=1e-9)


def test_auto_settings_differ_from_scratch_and_pretrained_and_yield_to_given_ones():
    scratch = plan_phases(RunConfig(model=ModelConfig(weights="none")))[0]
    assert (scratch.lr, scratch.schedule, scratch.monitor, scratch.patience) == (
        3e-3,
        "cosine",
        "val_accuracy",
        10,
    )
    head, tune = plan_phases(RunConfig(train=TrainConfig(fine_tune_epochs=2)))
    assert (head.lr, head.schedule, head.monitor, head.patience) == (1e-3, "plateau", "val_loss", 5)
    assert (tune.lr, tune.schedule) == (1e-5, "plateau")
    given = TrainConfig(lr=0.02, schedule="plateau", monitor="val_loss", patience=3)
    mine = plan_phases(RunConfig(model=ModelConfig(weights="none"), train=given))[0]
    assert (mine.lr, mine.schedule, mine.monitor, mine.patience) == (0.02, "plateau", "val_loss", 3)


def test_the_phase_chooses_the_callbacks(tmp_path):
    from gender_cls.training.phases import Phase, make_callbacks

    kinds = lambda cbs: [type(c).__name__ for c in cbs]  # noqa: E731
    plateau = Phase("scratch", 5, 1e-3, "all", True, "plateau", "val_accuracy", 4)
    callbacks = make_callbacks(tmp_path, plateau, TrainConfig(), None)
    assert "ReduceLROnPlateau" in kinds(callbacks)
    stopper = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    assert (stopper.monitor, stopper.mode, stopper.patience) == ("val_accuracy", "max", 4)
    cosine = Phase("scratch", 5, 1e-3, "all", True, "cosine", "val_accuracy", 10)
    callbacks = make_callbacks(tmp_path, cosine, TrainConfig(ema=True), None)
    assert "ReduceLROnPlateau" not in kinds(callbacks)
    assert kinds(callbacks)[:3] == ["TerminateOnNaN", "SwapEMAWeights", "EarlyStopping"]


def test_the_phase_line_names_the_epoch_whose_weights_were_kept(caplog):
    from gender_cls.training.phases import Phase, _log_phase, kept_epoch

    history = {"val_loss": [0.6, 0.4, 0.5], "val_accuracy": [0.7, 0.8, 0.9]}
    assert kept_epoch(history, "val_loss") == 1 and kept_epoch(history, "val_accuracy") == 2
    assert kept_epoch({}, "val_loss") is None
    with caplog.at_level("INFO", logger="gender_cls.training.phases"):
        _log_phase(Phase("head", 3, 1e-3, None, monitor="val_loss"), history, 5, 8, 12.0)
    assert "epochs 6-8 in 12s" in caplog.text
    assert "kept epoch 7 (best val_loss): val_loss 0.4000, val_accuracy 0.8000" in caplog.text
