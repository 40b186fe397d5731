"""Write images annotated with their predicted label and confidence (visual feedback)."""

from __future__ import annotations

from pathlib import Path

import cv2

from gender_cls.atomic import safe_name, unique_stems
from gender_cls.data.images import read_image
from gender_cls.errors import UserError


def annotate(rgb, text: str):
    """A copy of an RGB image with `text` on a dark band across the top."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    height, width = image.shape[:2]
    scale = max(0.4, width / 500)
    thickness = max(1, round(scale * 2))
    (_, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = text_h + baseline + 8
    cv2.rectangle(image, (0, 0), (width, band), (0, 0, 0), -1)
    cv2.putText(image, text, (4, band - baseline - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)  # fmt: skip
    return image


def save_annotated(predictions, out_dir: str | Path) -> list[Path]:
    """Save each predicted image with "label 97.3%" (and the face box, with a face crop) drawn
    on it, as PNG named after the input."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    stems = unique_stems([p.path for p in predictions], flat=True)
    for p, stem in zip(predictions, stems, strict=True):
        target = out / f"{stem}_{safe_name(p.label)}.png"
        rgb = read_image(p.path)
        if p.face_box:  # the face the prediction was made on
            x0, y0, x1, y1 = (round(v) for v in p.face_box)
            thickness = max(2, rgb.shape[1] // 150)
            rgb = cv2.rectangle(rgb.copy(), (x0, y0), (x1, y1), (0, 255, 0), thickness)
        if not cv2.imwrite(str(target), annotate(rgb, f"{p.label} {p.confidence:.1%}")):
            raise UserError(f"{target}: could not be written; check the folder and free space")
        written.append(target)
    return written
