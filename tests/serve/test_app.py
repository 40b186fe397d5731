"""The HTTP API: answers as predict.py, Grad-CAM, model info, 4xx for bad requests, the page."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import FACES

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from gender_cls.predict.predictor import Predictor  # noqa: E402
from gender_cls.serve.app import make_app  # noqa: E402
from gender_cls.serve.settings import ServeLimits  # noqa: E402
from tests.helpers import (  # noqa: E402
    CHROMIUM,
    needs_chromium,
    png_bytes,  # noqa: E402
    raising_dds,
)


@pytest.fixture(scope="module")
def client(trained_run):
    predictor = Predictor(trained_run.run_dir)
    limits = ServeLimits(max_batch=8, max_wait_ms=2, max_upload_mb=0.05, max_files=3)
    with TestClient(make_app(predictor, limits)) as test_client:
        yield test_client, predictor


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (no extra package)."""

    def __init__(self, tmp_path: Path):
        to_browser, self.to_browser = os.pipe()
        self.from_browser, from_browser = os.pipe()

        def wire():  # the browser reads commands on fd 3 and writes answers on fd 4
            ends = os.dup(to_browser), os.dup(from_browser)  # either may sit on 3 or 4 now
            for target, end in zip((3, 4), ends, strict=True):
                os.dup2(end, target)
                os.set_inheritable(target, True)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
            close_fds=False, preexec_fn=wire,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_browser)
        os.close(from_browser)
        self.reader = os.fdopen(self.from_browser, "rb")
        self.next_id, self.events, self.pending = 0, [], b""

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        answer = self.wait(lambda m: m.get("id") == self.next_id)
        assert "error" not in answer, answer
        return answer["result"]

    def wait(self, wanted) -> dict:
        """The next message `wanted` accepts; the events before it are kept in self.events."""
        while True:
            while b"\0" not in self.pending:
                chunk = self.reader.read1(65536)
                assert chunk, "Chromium closed its pipe"
                self.pending += chunk
            raw, self.pending = self.pending.split(b"\0", 1)
            message = json.loads(raw)
            if wanted(message):
                return message
            self.events.append(message)

    def close(self):
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.mark.slow
def test_predict_answers_as_predict_py_for_uploads_and_raw_bytes(client, two_class_data):
    test_client, predictor = client
    paths = sorted(str(p) for p in (two_class_data / "test").rglob("*.png"))[:3]
    expected = [p.to_dict() for p in predictor.predict_paths(paths)]
    files = [("files", (Path(p).name, Path(p).read_bytes(), "image/png")) for p in paths]
    answer = test_client.post("/predict", files=files)
    assert answer.status_code == 200, answer.text
    for got, want in zip(answer.json(), expected, strict=True):
        assert got == {**want, "path": Path(want["path"]).name}
    raw = test_client.post("/predict?name=a.png", content=Path(paths[0]).read_bytes(),
                           headers={"content-type": "image/png"})  # fmt: skip
    assert raw.json() == [{**expected[0], "path": "a.png"}]


@pytest.mark.slow
def test_explain_draws_a_gradcam_of_the_keras_model_and_an_export_alone_cannot(client,
                                                                              trained_run):  # fmt: skip
    test_client, _ = client
    assert test_client.get("/model").json()["explain"] is True
    answer = test_client.post("/explain?name=a.png", content=png_bytes())
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (256, 256)
    exported = Predictor(trained_run.run_dir / "model.tflite")
    with TestClient(make_app(exported)) as export_client:
        refused = export_client.post("/explain", content=png_bytes())
        assert refused.status_code == 400
        assert "Grad-CAM needs the Keras model" in refused.json()["error"]


@pytest.mark.slow
def test_model_health_and_metrics(client):
    test_client, predictor = client
    card = test_client.get("/model").json()
    assert card["classes"] == predictor.class_names and card["runner"] == "lite"
    assert card["threshold"] == predictor.threshold and card["image_size"] == 64
    assert test_client.get("/health").json() == {"status": "ok"}
    test_client.post("/predict", content=b"")
    metrics = test_client.get("/metrics").text
    assert 'gender_cls_requests_total{endpoint="/predict",status="400"}' in metrics
    assert "gender_cls_batch_size_bucket" in metrics and "gender_cls_request_seconds" in metrics
    assert "<title>gender_cls</title>" in test_client.get("/").text


@pytest.mark.slow
@pytest.mark.parametrize("make, status, message", [
    (lambda: {"content": b"not an image"}, 400, "image: cannot read image (not a JPEG, PNG"),
    (lambda: {"content": png_bytes()[:200]}, 400, "image: cannot read image ("),
    (lambda: {"content": raising_dds()}, 400, "image: cannot read image (not a JPEG, PNG"),
    (lambda: {"content": b""}, 400, "no image in the request"),
    (lambda: {"content": png_bytes((400, 400), 1)}, 413, "(--max_upload_mb)"),
    (lambda: {"files": [("f", (f"{i}.png", png_bytes(), "image/png")) for i in range(4)]}, 400,
     "4 images in one request; at most 3 (--max_files)"),
    (lambda: {"files": [("f", ("empty.png", b"", "image/png"))]}, 400, "no image in the request"),
    (lambda: {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
     400, "malformed multipart form"),
])  # fmt: skip
def test_bad_requests_are_4xx_one_line_json_and_the_server_keeps_serving(client, make, status,
                                                                         message):  # fmt: skip
    test_client, _ = client
    answer = test_client.post("/predict", **make())
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert message in error and "\n" not in error
    assert test_client.get("/health").status_code == 200


@pytest.mark.slow
def test_too_many_pixels_is_a_400(client, monkeypatch):
    from gender_cls.data.images import MAX_PIXELS_VARIABLE

    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "1000")
    answer = client[0].post("/predict?name=big.png", content=png_bytes((40, 40)))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("big.png: cannot read image (40 x 40 pixels, more")


@pytest.mark.slow
@needs_chromium
def test_the_page_predicts_a_dropped_face_with_no_console_errors(server, tmp_path):
    faces = sorted((FACES / "test" / "female").glob("*.jpg"))[:1] if FACES.is_dir() else []
    image = faces[0].read_bytes() if faces else png_bytes((96, 96))
    browser = Chromium(tmp_path)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            browser.send(domain, session)
        browser.send("Page.navigate", session, url=f"{server}/")
        browser.wait(lambda m: m.get("method") == "Page.loadEventFired")
        data_url = "data:image/jpeg;base64," + base64.b64encode(image).decode()
        script = f"""(async () => {{
            while (!card) await new Promise(r => setTimeout(r, 50));
            const blob = await (await fetch("{data_url}")).blob();
            await predict([new File([blob], "face.jpg", {{type: blob.type}})]);
            await new Promise(r => setTimeout(r, 200));
            const gradcam = document.querySelector("#results .gradcam");
            await gradcam.decode();
            return [document.querySelector("#results .label").textContent,
                    document.querySelector("#results .fill").style.width,
                    document.querySelector("#results canvas").width,
                    document.getElementById("model").textContent, gradcam.naturalWidth];
        }})()"""
        result = browser.send("Runtime.evaluate", session, expression=script, awaitPromise=True,
                              returnByValue=True)  # fmt: skip
        assert "exceptionDetails" not in result, result
        label, width, canvas_width, model_line, gradcam_width = result["result"]["value"]
        assert label in ("female", "male") and width.endswith("%") and canvas_width > 0
        assert gradcam_width == 256  # the Grad-CAM of the Keras model, from POST /explain
        assert model_line.startswith("model.keras: female / male, 64 px")
        problems = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
                    or (e.get("method") == "Runtime.consoleAPICalled"
                        and e["params"]["type"] == "error")
                    or (e.get("method") == "Log.entryAdded"
                        and e["params"]["entry"]["level"] == "error")]  # fmt: skip
        assert problems == []
    finally:
        browser.close()
