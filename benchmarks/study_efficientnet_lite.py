"""How EfficientNet-Lite's converted ImageNet weights must be run: padding of the stride-2 layers,
BatchNorm epsilon and input normalisation, measured on sample photos that ship with installed
packages (no download). The baseline row is the builder's choice; each other row changes one
thing or more, and a wrong choice shows as a lower probability or rank of the true class.

    python benchmarks/study_efficientnet_lite.py [--variants 0,1,2]
"""

from __future__ import annotations

import itertools

import click
import numpy as np
from matplotlib import cbook
from PIL import Image

from gender_cls.models import efficientnet_lite  # noqa: E402
from gender_cls.models.weights.efficientnet_lite import load_imagenet  # noqa: E402

# ImageNet indices: military uniform, Egyptian cat, espresso
PHOTOS = {"grace_hopper": 652, "chelsea": 285, "coffee": 967}
NORMALISATIONS = {
    "(x-127)/128": lambda x: (x - 127.0) / 128.0,  # TensorFlow's EfficientNet-Lite builder
    "torchvision": lambda x: (
        (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    ),
}


def photos(size: int) -> np.ndarray:
    import skimage.data

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        grace = np.asarray(image.convert("RGB"))
    images = [grace, skimage.data.chelsea(), skimage.data.coffee()]
    return np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BILINEAR))
                     for i in images]).astype(np.float32)  # fmt: skip


@click.command()
@click.option("--variants", default="0,1,2", show_default=True)
def main(variants: str) -> None:
    for variant in (int(v) for v in variants.split(",")):
        size = efficientnet_lite.VARIANTS[variant][2]
        batch = photos(size)
        rows = []
        for padding, eps in itertools.product(("same", "symmetric"), (1e-3, 1e-5)):
            model = efficientnet_lite.build(variant, size, True, padding, eps)
            load_imagenet(model, variant)
            for name, normalise in NORMALISATIONS.items():
                out = model.predict(normalise(batch), verbose=0)
                probs = [row[label] for row, label in zip(out, PHOTOS.values(), strict=True)]
                ranks = [int((row > row[label]).sum()) + 1
                         for row, label in zip(out, PHOTOS.values(), strict=True)]  # fmt: skip
                rows.append((f"{padding:<9} eps {eps:<6g} {name:<12}", probs, ranks))
        base = np.mean(np.log(rows[0][1]))
        print(f"\nefficientnet_lite{variant} at {size} px: probability (rank) of the true class; "
              "ratio: geometric mean probability against the first row")  # fmt: skip
        print(f"{'':<36}" + "".join(f"{p:>16}" for p in PHOTOS) + f"{'ratio':>8}")
        for label, probs, ranks in rows:
            cells = "".join(f"{p:>10.3f} ({r:>2})" for p, r in zip(probs, ranks, strict=True))
            print(f"{label:<36}{cells}{np.exp(np.mean(np.log(probs)) - base):>8.2f}")


if __name__ == "__main__":
    main()
