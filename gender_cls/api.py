"""The Python API: what the commands do, for notebooks and scripts. `import gender_cls` reaches
these names lazily (see __init__.py), and each loads its modules when called ("loaded on use"):
importing the package stays quick and starts no TensorFlow.

    import gender_cls
    run = gender_cls.train("data/faces", "runs/faces", recipe="faces-offline")
    result = gender_cls.evaluate(run.run_dir, "data/faces/test")
    result.metrics["accuracy"]; result.write("evaluation_results")
    gender_cls.Predictor(run.run_dir).predict(["photo.jpg"])[0].label
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gender_cls.errors import UserError

if TYPE_CHECKING:  # each function imports what it runs, when it runs (TensorFlow included)
    from gender_cls.evaluation.result import EvaluationResult
    from gender_cls.training.run import TrainingResult

log = logging.getLogger(__name__)


def train(
    data_path: str | Path | None = None,
    output_dir: str | Path | None = None,
    recipe: str | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    output_model: str | None = None,
    verbose: int | str = 0,
    cluster=None,
    **options,
) -> TrainingResult:
    """Train a classifier on `data_path` into the run folder `output_dir`; returns the run (its
    folder, card and history). `options` are the options of `gender-cls train` (`backbone`,
    `epochs`, `image_size`, `config` for a JSON file...), with the CLI's precedence: defaults <
    `config` < `recipe` < the options given. `verbose`: Keras' fit verbosity. `cluster`: the
    processes joined by training.multihost.join, for training on several."""
    from gender_cls.training.options import (  # loaded on use
        checked_options,
        ignored_on_resume,
        run_config,
    )
    from gender_cls.training.run import train as train_run  # imports TensorFlow: loaded on use

    named = {"data_path": data_path, "output_dir": output_dir, "recipe": recipe}
    options = checked_options({**{k: str(v) for k, v in named.items() if v}, **options})
    if resume and ignored_on_resume(options):
        log.warning("resume=True continues the run as its config.json says; ignored: %s",
                    ", ".join(ignored_on_resume(options)))  # fmt: skip
    if not options.get("output_dir") and not options.get("config"):
        raise UserError("name the run folder: output_dir")
    return train_run(run_config(options), resume=resume, overwrite=overwrite,
                     output_model=output_model, verbose=verbose, cluster=cluster)  # fmt: skip


def evaluate(
    model_path: str | Path, data_path: str | Path | None = None, **options
) -> EvaluationResult:
    """Measure a model on a labelled folder (or its run's own `split="val"|"test"`); the result
    has `.metrics` (the dict of metrics.json) and `.write(out_dir)` (the files of test_script.py).
    `options` are evaluate()'s: tune_on, groups, tta, threshold, face_crop, scorer..."""
    from gender_cls.evaluation.evaluate import evaluate as run_evaluation  # loaded on use

    return run_evaluation(model_path, data_path, **options)


def export(model_path: str | Path, fmt: str = "tflite", quantize: str | None = None) -> dict:
    """Export a trained model (tflite, onnx or saved_model), checked against Keras on images of
    its run; returns what was written (the record added to its card)."""
    from gender_cls.predict.export import export_model  # loaded on use: a fast start-up

    return export_model(model_path, fmt, quantize)


def list_backbones() -> list[str]:
    """The registry's backbones (tuned rows first); any keras.applications class name works too."""
    from gender_cls.models.backbones import FIRST_CLASS  # loaded on use: a fast start-up

    return list(FIRST_CLASS)
