"""The batcher: concurrent requests are scored together."""

from __future__ import annotations

import threading
import urllib.request

import pytest

pytest.importorskip("fastapi")
from tests.helpers import png_bytes, post_image  # noqa: E402


@pytest.mark.slow
def test_concurrent_requests_are_scored_in_batches(server):
    image = png_bytes()
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(post_image(server, image)))
               for _ in range(12)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 12 and all(a == answers[0] for a in answers)
    metrics = urllib.request.urlopen(f"{server}/metrics", timeout=10).read().decode()
    values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and line[0] != "#")
    batches, images = (
        float(values["gender_cls_batch_size_count"]),
        float(values["gender_cls_batch_size_sum"]),
    )
    assert images == 12 and batches < 12  # at least two requests shared a model call
