"""Grad-CAM: where in the image a classifier looked, from the gradients of its decision with
respect to the last convolutional block of its backbone (TensorFlow backend)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gender_cls.artifacts.card import KERAS_SUFFIXES
from gender_cls.errors import UserError
from gender_cls.models.backbones import get_backbone
from gender_cls.predict.annotate import annotate
from gender_cls.predict.runners import KerasRunner, load_keras_model

OVERLAY_SIZE = 256  # side of the written pictures


class GradCam:
    """Grad-CAM of a gender_cls classifier (raw pixels -> preprocess -> base -> pool -> head).

    The maps come from the backbone's registry row (`gradcam_layer`), or else its output, which
    for every keras.applications base without its top is the last convolutional block.
    """

    def __init__(self, model, backbone: str = ""):
        import keras  # TensorFlow, only when used

        from gender_cls.models.classifier import get_base  # imports TensorFlow: only when used

        self.model = model
        base = get_base(model)
        name = get_backbone(backbone).gradcam_layer if backbone else None
        (output,) = base.outputs  # this base's own graph (`.output` may be a caller's)
        maps = base.get_layer(name).output if name else output
        self.base = keras.Model(base.inputs, [maps, output])
        position = model.layers.index(base)
        self.before = model.layers[1:position]  # after the input: the preprocessing layer
        self.after = model.layers[position + 1 :]  # pooling, head, output

    def heatmaps(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(maps [N, h, w] in [0, 1], probabilities [N, outputs]) for RGB pixels [N, H, W, 3];
        each map explains the class the model predicted."""
        import tensorflow as tf  # TensorFlow, only when used

        x = tf.convert_to_tensor(np.asarray(images, np.float32))
        with tf.GradientTape() as tape:
            for layer in self.before:
                x = layer(x)
            maps, x = self.base(x, training=False)
            for layer in self.after:
                x = layer(x, training=False)
            outputs = x
            if outputs.shape[-1] == 1:  # sigmoid: explain p or 1 - p, whichever won
                p = outputs[:, 0]
                score = tf.where(p >= 0.5, p, 1.0 - p)
            else:
                score = tf.reduce_max(outputs, axis=-1)
        gradients = tape.gradient(score, maps)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()
        peaks = cams.reshape(len(cams), -1).max(axis=1)[:, None, None]
        cams = np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)
        return cams, outputs.numpy()


def overlay(rgb: np.ndarray, heatmap: np.ndarray, caption: str, alpha: float = 0.45):
    """The image (RGB) with the heatmap in the jet colour map over it and `caption` on top; BGR
    for cv2.imwrite, OVERLAY_SIZE pixels wide."""
    image = cv2.resize(np.asarray(rgb, np.uint8), (OVERLAY_SIZE, OVERLAY_SIZE))
    heat = cv2.resize(heatmap.astype(np.float32), (OVERLAY_SIZE, OVERLAY_SIZE))
    colours = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 1 - alpha, colours, alpha, 0)
    return annotate(cv2.cvtColor(blended, cv2.COLOR_BGR2RGB), caption)


def keras_model_for(predictor):
    """The Keras model behind a predictor, loading the .keras/.h5 file when it runs an export."""

    if isinstance(predictor.runner, KerasRunner):
        return predictor.runner.model
    if predictor.model_file.suffix.lower() not in KERAS_SUFFIXES:
        raise UserError(f"{predictor.model_file}: Grad-CAM needs the Keras model (.keras/.h5 or "
                        "a run directory), not an export")  # fmt: skip
    return load_keras_model(predictor.model_file)


def write_gradcams(predictor, images: np.ndarray, captions: list[str], names: list[str],
                   out_dir: str | Path, batch_size: int = 16) -> list[Path]:  # fmt: skip
    """One PNG per image (as the model saw it) with its Grad-CAM and caption; returns them."""
    card = predictor.model_ref.card
    cam = GradCam(keras_model_for(predictor), card.backbone if card else "")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        maps, _ = cam.heatmaps(batch)
        for i, heatmap in enumerate(maps):
            target = out / names[start + i]
            cv2.imwrite(str(target), overlay(batch[i], heatmap, captions[start + i]))
            written.append(target)
    return written
