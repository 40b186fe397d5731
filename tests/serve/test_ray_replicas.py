"""Ray Serve replicas answer as the local server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.helpers import free_port

pytest.importorskip("fastapi")
from gender_cls.predict.predictor import Predictor  # noqa: E402
from gender_cls.serve.settings import ServeSettings  # noqa: E402
from tests.helpers import post_image  # noqa: E402


@pytest.mark.slow
def test_ray_serve_replicas_answer_as_the_local_server(trained_run, two_class_data):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.serve")
    from ray import serve

    from gender_cls.serve.ray_replicas import deploy

    path = sorted((two_class_data / "test").rglob("*.png"))[0]
    expected = Predictor(trained_run.run_dir).predict_paths([path])[0].to_dict()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        port = free_port()
        settings = ServeSettings(str(trained_run.run_dir))
        deploy(settings, 2, "127.0.0.1", port, blocking=False)
        url = f"http://127.0.0.1:{port}"
        answers = [post_image(url, path.read_bytes()) for _ in range(4)]
        assert answers == [[{**expected, "path": "image"}]] * 4
        card = json.loads(urllib.request.urlopen(f"{url}/model", timeout=30).read())
        assert card["classes"] == ["female", "male"]
    finally:
        serve.shutdown()
        ray.shutdown()
