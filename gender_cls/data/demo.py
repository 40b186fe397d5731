"""Demo data: the seeds' image-direction task (up/down/left/right) as an ImageFolder dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Class name -> number of counter-clockwise quarter turns applied to an upright image.
DIRECTIONS = {"up": 0, "left": 1, "down": 2, "right": 3}
SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.15), ("test", 0.15))
WORDS = ("HELLO", "TOP", "SKY", "NORTH", "UP", "DEMO", "TEXT", "KERAS")


def draw_scene(size: int, rng: np.random.Generator) -> np.ndarray:
    """An upright RGB scene: light sky above, darker ground below, objects standing on it, text."""
    sky = rng.uniform(150, 255, 3)
    ground = rng.uniform(20, 120, 3)
    horizon = int(size * rng.uniform(0.55, 0.75))
    rows = np.linspace(0.0, 1.0, size)[:, None, None]
    image = np.empty((size, size, 3), np.float32)
    image[:] = sky * (1.0 - 0.3 * rows)
    image[horizon:] = ground * (1.0 - 0.4 * (rows[horizon:] - rows[horizon]))
    image = np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
    sun = (int(rng.uniform(0.1, 0.9) * size), int(rng.uniform(0.08, 0.25) * size))
    cv2.circle(image, sun, max(2, size // 14), (255, 230, 60), -1)
    for _ in range(rng.integers(1, 4)):  # houses and trees standing on the ground
        x = int(rng.uniform(0.05, 0.8) * size)
        w = int(rng.uniform(0.08, 0.2) * size)
        h = int(rng.uniform(0.1, 0.3) * size)
        color = tuple(int(c) for c in rng.uniform(0, 255, 3))
        cv2.rectangle(image, (x, horizon - h), (x + w, horizon), color, -1)
        roof = np.array([[x - w // 4, horizon - h], [x + w + w // 4, horizon - h],
                         [x + w // 2, horizon - h - w]], np.int32)  # fmt: skip
        cv2.fillPoly(image, [roof], tuple(int(c) for c in rng.uniform(0, 255, 3)))
    text = str(rng.choice(WORDS))
    scale = size / 160
    cv2.putText(image, text, (int(0.05 * size), int(0.45 * size)), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (0, 0, 0), max(1, size // 64), cv2.LINE_AA)  # fmt: skip
    return image


def make_direction_dataset(
    out_dir: str | Path,
    n_per_class: int = 200,
    size: int = 96,
    seed: int = 0,
) -> Path:
    """Write out_dir/{train,val,test}/{up,down,left,right}/*.jpg by rotating upright images.

    Each upright image gives one image per class and lands in one split only (70/15/15), so no
    scene leaks between train and test. Returns `out_dir`.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    uprights = [draw_scene(size, rng) for _ in range(n_per_class)]
    bounds = np.cumsum([0] + [round(f * n_per_class) for _, f in SPLIT_FRACTIONS])
    bounds[-1] = n_per_class
    for (split, _), start, stop in zip(SPLIT_FRACTIONS, bounds[:-1], bounds[1:], strict=True):
        for name, turns in DIRECTIONS.items():
            folder = out_dir / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(start, stop):
                rotated = np.rot90(uprights[i], k=turns)
                bgr = cv2.cvtColor(np.ascontiguousarray(rotated), cv2.COLOR_RGB2BGR)
                path = folder / f"{name}_{i:05d}.jpg"
                cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out_dir
