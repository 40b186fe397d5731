"""Load a model artifact (or a bare model file) and predict images, arrays or a folder."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cls.artifacts.card import ModelRef, resolve_model
from gender_cls.config import FaceCrop
from gender_cls.data.images import ImageReadError, load_image, read_image, resize_image
from gender_cls.errors import UserError
from gender_cls.faces.cropper import FaceCropper
from gender_cls.metrics.calibration import apply_temperature
from gender_cls.predict.input_spec import (
    OUTPUT_KINDS,
    InputSpec,
    is_channels_first,
    look_like_probabilities,
    to_probabilities,
)
from gender_cls.predict.inputs import CHUNK, chunks, expand_paths
from gender_cls.predict.runners import KerasRunner, open_runner
from gender_cls.predict.tta import average_over_views

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """One image's result; `error` is set (and the rest empty) when it could not be read."""

    path: str
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    face_box: list[float] | None = None  # with a face crop: the face used (x0, y0, x1, y1)
    face_found: bool | None = None  # with a face crop: False when the whole image was used
    error: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Predictor:
    """A model with everything needed to turn pixels into labels.

    A gender_cls model's card supplies the classes, image size, threshold and resize mode. A
    bare model file takes its size and layout (channels last or first) from its input shape, its
    classes from `classes` (else female,male for one sigmoid output, class_0.. for several), its
    pixel scaling from `input_scale` ("unit": /255, what ImageDataGenerator(rescale=1./255)
    scripts used; "imagenet": torchvision's mean/std) with `input_mean`/`input_std` overriding
    it, and `output` says whether it emits logits ("auto": look at its outputs on test inputs).
    Every guess is listed in `assumptions`. A calibrated model's temperature is applied to every
    probability unless `calibrated` is False. With `tta` N > 1 the probabilities are averaged
    over N light views of each image (tta.py).
    """

    def __init__(
        self,
        model_path: str | Path | ModelRef,
        *,
        classes: list[str] | None = None,
        input_scale: str | None = None,
        input_mean: tuple[float, ...] | None = None,
        input_std: tuple[float, ...] | None = None,
        bgr: bool = False,
        output: str = "auto",
        threshold: float | None = None,
        batch_size: int = 32,
        backend: str = "auto",
        mixed_precision: bool = False,
        jit: bool | None = None,
        face_crop: bool | None = None,
        calibrated: bool = True,
        tta: int = 1,
    ):
        self.model_ref = resolve_model(model_path)
        self.model_file = self.model_ref.file
        if output not in OUTPUT_KINDS:
            raise UserError(f"--output must be one of {', '.join(OUTPUT_KINDS)}, got {output!r}")
        self.runner = open_runner(self.model_ref, backend, batch_size, mixed_precision, jit)
        self.batch_size = batch_size
        self.assumptions: list[str] = []
        outputs = self.runner.output_units
        card = self.model_ref.card
        channels_first = is_channels_first(self.runner.input_shape)
        scale = input_scale or (card.input_scale if card else "unit")
        self.input = InputSpec.build(scale, input_mean, input_std, bgr, channels_first)
        self.logits = output == "logits"
        if card:
            self.class_names = card.class_names
            self.image_size = card.image_size
            self.resize = card.resize
            self.threshold, self.threshold_source = card.threshold, card.threshold_source
        else:
            self._assume_bare(classes, outputs, output)
        expected = 1 if len(self.class_names) == 2 and outputs == 1 else len(self.class_names)
        if outputs != expected:
            raise UserError(
                f"{self.model_file}: the model has {outputs} output(s) but {len(self.class_names)} "
                f"classes were given ({', '.join(self.class_names)}); pass matching --classes"
            )
        self.binary = outputs == 1
        if not self.binary:
            self.threshold, self.threshold_source = None, "argmax"
        elif threshold is not None:
            self.threshold, self.threshold_source = float(threshold), "given on the command line"
        elif self.threshold is None:
            self.threshold, self.threshold_source = 0.5, "default 0.5 (none in model.json)"
        self.face_crop = _face_crop(card, face_crop)
        self._cropper = None
        self.temperature = card.temperature if card and calibrated else 1.0
        if tta < 1:
            raise UserError(f"--tta must be 1 or more, got {tta}")
        self.tta = tta
        trained = card.config if card else None  # mirror views only for a model trained on them
        self.tta_flip = bool(trained and trained.augment.horizontal_flip)

    def _assume_bare(self, classes, outputs: int, output: str) -> None:
        """Classes, size and output kind of a model without a card, each guess stated."""
        shape = self.runner.input_shape
        height, width = shape[2:4] if self.input.channels_first else shape[1:3]
        if height is None or height != width:
            raise UserError(f"{self.model_file}: cannot tell the image size from input {shape}; "
                            "write a .json beside it with class_names and image_size")  # fmt: skip
        if classes:
            self.class_names, named = list(classes), "given"
        elif outputs == 1:
            self.class_names, named = ["female", "male"], "assumed: pass --classes if not"
        else:
            self.class_names = [f"class_{i}" for i in range(outputs)]
            named = "numbered: pass --classes to name them"
        self.image_size = int(height)
        self.resize = "stretch"
        self.threshold, self.threshold_source = 0.5, "default 0.5 (bare model)"
        if output == "auto":
            self.logits = not self._outputs_look_like_probabilities()
        kind = "logits (softmax/sigmoid applied)" if self.logits else "probabilities"
        self.assumptions.append(
            f"bare model (no .json): image size {self.image_size} from its input, classes "
            f"{', '.join(self.class_names)} ({named}), threshold 0.5, {self.input.describe()}, "
            f"outputs {kind}" + (" judged from test inputs (else pass --output)"
                                 if output == "auto" else "")
        )  # fmt: skip

    def _outputs_look_like_probabilities(self) -> bool:
        """Run black, white and noise images: do the outputs look like probabilities?"""
        rng = np.random.default_rng(0)
        shape = (6, self.image_size, self.image_size, 3)
        probes = rng.uniform(0, 255, shape).astype(np.float32)
        probes[0], probes[1] = 0, 255
        return look_like_probabilities(self.runner.predict(self.input.apply(probes)))

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Model outputs as [N, classes] probabilities (two columns for a sigmoid model)."""
        scores = to_probabilities(scores) if self.logits else np.asarray(scores, np.float64)
        if self.binary:
            p = scores.reshape(-1)
            scores = np.stack([1.0 - p, p], axis=1)
        return apply_temperature(scores, self.temperature)

    def decide(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Class indices: positive when P(class 1) >= threshold for binary models, else argmax."""
        if self.binary:
            t = self.threshold if threshold is None else threshold
            return (probabilities[:, 1] >= t).astype(int)
        return probabilities.argmax(axis=1)

    def predict_arrays(self, images: np.ndarray, tta: int | None = None) -> np.ndarray:
        """[N, size, size, 3] RGB pixels in [0, 255] -> [N, classes] probabilities, averaged
        over `tta` views (default: the predictor's)."""
        images = np.asarray(images, np.float32)
        views = self.tta if tta is None else tta
        if views > 1:
            return average_over_views(self._predict_once, images, views, self.tta_flip)
        return self._predict_once(images)

    def _predict_once(self, images: np.ndarray) -> np.ndarray:
        return self.probabilities(self.runner.predict(self.input.apply(images)))

    def predict_files(
        self, paths: list[str], verbose: int = 0, tta: int | None = None
    ) -> np.ndarray:
        """[len(paths), classes] probabilities of image files, NaN in the row of a file that
        cannot be read (checked files can break before they are predicted): a Keras model reads
        them with the tf.data pipeline in batches; an exported one with a thread pool (no
        TensorFlow needed)."""
        views = self.tta if tta is None else tta
        if not isinstance(self.runner, KerasRunner) or not self.input.tensor_safe or views > 1:
            return self.predict_chunks(paths, (views,))[0]
        from gender_cls.data.pipeline import predict_dataset  # imports TensorFlow: only when used

        failures: set[str] = set()
        ds = predict_dataset(paths, self.image_size, self.batch_size, self.resize, failures)
        if self.input != InputSpec():
            ds = ds.map(self.input.apply)
        scores = self.probabilities(self.runner.predict(ds, verbose=verbose))
        scores[[path in failures for path in paths]] = np.nan
        return scores

    def predict_chunks(self, paths: list[str], views: tuple[int, ...]) -> list[np.ndarray]:
        """For each number of test-time views, [len(paths), classes] probabilities, NaN in the
        row of a file that cannot be read; each chunk of files is decoded once for all."""
        outputs = [np.full((len(paths), len(self.class_names)), np.nan) for _ in views]
        start = 0
        for chunk in chunks(paths):
            images, errors, _ = self.load_inputs(chunk)
            rows = [start + i for i, path in enumerate(chunk) if path not in errors]
            for output, count in zip(outputs, views, strict=True):
                if rows:
                    output[rows] = self.predict_arrays(images, count)
            start += len(chunk)
        return outputs

    def load_inputs(self, paths: list[str], crop: bool = False):
        """Decode files in parallel: (images of the readable ones in order, {path: error},
        {path: face or None}); with `crop` and a face crop, each image is its aligned face."""
        images: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        faces: dict[str, object] = {}

        def load(path: str) -> None:
            try:
                images[path], face = self.load_one(path, crop)
                if crop and self.face_crop is not None:
                    faces[path] = face
            except ImageReadError as error:
                errors[path] = error.reason

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(load, paths))
        readable = [images[p] for p in paths if p in images]
        shape = (0, self.image_size, self.image_size, 3)
        return (np.stack(readable) if readable else np.zeros(shape, np.uint8)), errors, faces

    def load_one(self, source, crop: bool = True) -> tuple[np.ndarray, object | None]:
        """One image (a path or a binary file object) as the model takes it, and the face found
        (None without a face crop, or when none was found and the whole image is used).
        Raises ImageReadError."""
        if crop and self.face_crop is not None:
            return self.prepare(read_image(source))
        return load_image(source, self.image_size, self.resize), None

    def prepare(self, rgb: np.ndarray, crop: bool = True) -> tuple[np.ndarray, object | None]:
        """An RGB image (H x W x 3, 0-255) as the model takes it, and the face found (as
        load_one)."""
        cropper = self._face_cropper() if crop else None
        if cropper is not None:
            aligned, face = cropper.crop_image(rgb, self.image_size)
            if aligned is not None:
                return aligned, face
        return resize_image(rgb, self.image_size, self.resize), None

    def predict(self, inputs) -> list[Prediction]:
        """Predictions for image files, folders or RGB arrays (H x W x 3 with values 0-255, a
        list of them, or a batch N x H x W x 3), face-cropped as the model was trained. An
        array's `path` is "array[i]"; an unreadable file's Prediction has its `error`."""
        single = isinstance(inputs, str | Path) or getattr(inputs, "ndim", 0) == 3
        items = [inputs] if single else list(inputs)
        arrays = [np.asarray(item) for item in items if not isinstance(item, str | Path)]
        if not arrays:
            return self.predict_paths(items)
        if len(arrays) != len(items):
            raise UserError("predict takes image files or arrays, not both in one call")
        results = []
        for start in range(0, len(arrays), CHUNK):
            prepared = [
                self.prepare(_rgb(a, start + i))
                for i, a in enumerate(arrays[start : start + CHUNK])
            ]
            probabilities = self.predict_arrays(np.stack([image for image, _ in prepared]))
            results += [self.prediction(f"array[{start + i}]", p, face)
                        for i, (p, (_, face)) in enumerate(zip(probabilities, prepared, strict=True))]  # fmt: skip
        return results

    def _face_cropper(self):
        if self.face_crop is None:
            return None
        if self._cropper is None:
            self._cropper = FaceCropper(self.face_crop)
        return self._cropper

    def predict_paths(self, paths: list[str | Path]) -> list[Prediction]:
        """Predict image files and folders; unreadable files get an error, the rest a label.
        Files are decoded CHUNK at a time, so memory does not grow with their number."""
        return [p for files in chunks(expand_paths(paths)) for p in self.predict_chunk(files)]

    def predict_chunk(self, files: list[str]) -> list[Prediction]:
        images, errors, faces = self.load_inputs(files, crop=True)
        readable = [p for p in files if p not in errors]
        probs = self.predict_arrays(images) if readable else []
        by_path = dict(zip(readable, probs, strict=True))
        return [Prediction(path, error=errors[path]) if path in errors
                else self.prediction(path, by_path[path], faces.get(path)) for path in files]  # fmt: skip

    def prediction(self, path: str, probabilities: np.ndarray, face=None) -> Prediction:
        """One image's Prediction from its [classes] probabilities and the face it was cropped
        to (None: no face crop, or no face found and the whole image used)."""
        index = int(self.decide(probabilities[None])[0])
        return Prediction(
            path,
            label=self.class_names[index],
            confidence=float(probabilities[index]),
            probabilities={
                n: float(v) for n, v in zip(self.class_names, probabilities, strict=True)
            },
            threshold=self.threshold,
            face_box=_box(face),
            face_found=None if self.face_crop is None else face is not None,
        )


def _rgb(array: np.ndarray, index: int) -> np.ndarray:
    """An array given to predict as 8-bit RGB; one of another shape is a UserError."""
    if array.ndim != 3 or array.shape[-1] != 3:
        raise UserError(f"array[{index}]: shape {array.shape}; give RGB images as H x W x 3")
    return np.clip(array, 0, 255).astype(np.uint8)


def _face_crop(card, asked: bool | None) -> FaceCrop | None:
    """The face crop to apply: the model's unless asked otherwise (--face_crop/--no-face_crop)."""
    if asked is False:
        return None
    if card is not None and card.face_crop is not None:
        return card.face_crop
    return FaceCrop() if asked else None


def _box(face) -> list[float] | None:
    return None if face is None else [round(v, 1) for v in face.box]
