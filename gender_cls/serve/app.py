"""The HTTP API and page of `gender-cls serve`: a FastAPI app over one Predictor running an
exported model (no TensorFlow). Images of concurrent requests are scored together in batches;
a bad request is a 4xx with a one-line JSON error and never reaches the model."""

import asyncio
import io
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from importlib import resources

import numpy as np

from gender_cls.artifacts.card import KERAS_SUFFIXES
from gender_cls.data.images import ImageReadError
from gender_cls.errors import UserError
from gender_cls.predict.gradcam import GradCam, keras_model_for, overlay
from gender_cls.predict.predictor import Predictor
from gender_cls.serve.batcher import Batcher
from gender_cls.serve.settings import INSTALL, ServeLimits, ServeSettings, predictor_for

log = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def model_info(predictor: Predictor) -> dict:
    """GET /model: what the server runs and how it decides."""
    card = predictor.model_ref.card
    return {
        "model": predictor.model_file.name,
        "runner": type(predictor.runner).__name__.removesuffix("Runner").lower(),
        "classes": predictor.class_names,
        "image_size": predictor.image_size,
        "threshold": predictor.threshold,
        "threshold_source": predictor.threshold_source,
        "temperature": predictor.temperature,
        "face_crop": asdict(predictor.face_crop) if predictor.face_crop else None,
        "tta": predictor.tta,
        "backbone": card.backbone if card else None,
        "versions": card.versions if card else {},
        "explain": explainable(predictor),
    }


def explainable(predictor: Predictor) -> bool:
    """Whether POST /explain can draw Grad-CAMs: the Keras model is there (TensorFlow is
    imported only on the first /explain)."""
    return predictor.model_file.suffix.lower() in KERAS_SUFFIXES


class Explainer:
    """POST /explain: Grad-CAM PNGs, one at a time in their own thread (TensorFlow)."""

    def __init__(self, predictor: Predictor):
        self.predictor, self.cam = predictor, None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")

    def png(self, image: np.ndarray, caption: str) -> bytes:
        import cv2  # kept out of start-up

        if self.cam is None:
            card = self.predictor.model_ref.card
            self.cam = GradCam(keras_model_for(self.predictor), card.backbone if card else "")
        maps, _ = self.cam.heatmaps(image[None])
        _, encoded = cv2.imencode(".png", overlay(image, maps[0], caption))
        return encoded.tobytes()


def make_app(predictor: Predictor, limits: ServeLimits | None = None):
    """The FastAPI app: POST /predict and /explain, GET /model, /health, /metrics and the page
    at /."""
    try:
        import prometheus_client  # optional: the serve extra
        from fastapi import FastAPI, Request  # optional: the serve extra
        from fastapi.responses import (  # optional: the serve extra
            HTMLResponse,
            JSONResponse,
            Response,
        )
        from prometheus_client import (  # optional: the serve extra
            CollectorRegistry,
            Counter,
            Histogram,
            generate_latest,
        )
    except ImportError as error:
        raise UserError(f"serving needs {error.name}: {INSTALL}") from None
    prometheus_client.disable_created_metrics()  # no *_created series: they change nothing
    limits = limits or ServeLimits()
    registry = CollectorRegistry()
    requests = Counter("gender_cls_requests", "Requests by endpoint and status code",
                       ["endpoint", "status"], registry=registry)  # fmt: skip
    images_total = Counter("gender_cls_images", "Images predicted", registry=registry)
    latency = Histogram("gender_cls_request_seconds", "Request latency, seconds", ["endpoint"],
                        registry=registry)  # fmt: skip
    batch_sizes = Histogram("gender_cls_batch_size", "Images scored per model call",
                            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=registry)  # fmt: skip
    batcher = Batcher(predictor.predict_arrays, limits, batch_sizes.observe)
    explainer = Explainer(predictor)
    decoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")
    info = model_info(predictor)
    page = resources.files("gender_cls.serve").joinpath("page.html").read_text()
    app = FastAPI(title="gender_cls", version=info["versions"].get("gender_cls", ""),
                  docs_url="/docs", redoc_url=None)  # fmt: skip

    @app.middleware("http")
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        endpoint = request.url.path if request.url.path in KNOWN_PATHS else "other"
        requests.labels(endpoint, str(response.status_code)).inc()
        latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(BadRequest)
    async def bad_request(_request, error: BadRequest):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.post("/predict")
    async def predict(request: Request):
        uploads = await read_uploads(request, limits)
        loop = asyncio.get_running_loop()
        decoded = await asyncio.gather(*(loop.run_in_executor(decoder, decode, predictor, name, data)
                                         for name, data in uploads))  # fmt: skip
        scores = await batcher.submit([image for image, _ in decoded])
        images_total.inc(len(uploads))
        return [predictor.prediction(name, score, face).to_dict()
                for (name, _), (_, face), score in zip(uploads, decoded, scores, strict=True)]  # fmt: skip

    @app.post("/explain")
    async def explain(request: Request):
        if not info["explain"]:
            raise BadRequest(400, f"{predictor.model_file.name}: Grad-CAM needs the Keras model; "
                             "serve a run directory or its .keras")  # fmt: skip
        (name, data), *_ = await read_uploads(request, limits)
        loop = asyncio.get_running_loop()
        image, face = await loop.run_in_executor(decoder, decode, predictor, name, data)
        (score,) = await batcher.submit([image])
        found = predictor.prediction(name, score, face)
        caption = f"{found.label} {found.confidence:.1%}"
        png = await loop.run_in_executor(explainer.worker, explainer.png, image, caption)
        return Response(png, media_type="image/png")

    @app.get("/model")
    async def model():
        return info

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return page

    return app


KNOWN_PATHS = ("/predict", "/explain", "/model", "/health", "/metrics", "/")


def app_for(settings: ServeSettings):
    """The app serve_command's `settings` describe (a uvicorn worker's, a Ray replica's)."""
    return make_app(predictor_for(settings), settings.limits)


def app_from_environment():
    """The app of a uvicorn worker, from the settings serve_command left in the environment."""
    return app_for(ServeSettings.from_environment())


def decode(predictor: Predictor, name: str, data: bytes):
    """(model-ready image, face) of one upload; a 400 naming it when it is not an image."""
    try:
        return predictor.load_one(io.BytesIO(data))
    except ImageReadError as error:
        reason = re.sub(r" <_io\.BytesIO object at \w+>", "", error.reason)  # Pillow names it
        raise BadRequest(400, f"{name}: cannot read image ({reason})") from None


async def read_uploads(request, limits: ServeLimits) -> list[tuple[str, bytes]]:
    """The images of a request: the files of a multipart form, or the raw body (its name from
    ?name=, else "image"); 413 past --max_upload_mb, 400 when empty or past --max_files."""
    cap = int(limits.max_upload_mb * 2**20)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BadRequest(413, f"request of {int(declared):,} bytes; at most {cap:,} "
                         "(--max_upload_mb)")  # fmt: skip
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BadRequest(413, f"request over {cap:,} bytes (--max_upload_mb)")
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        uploads = await _form_files(request.headers, bytes(body), limits.max_files)
    else:
        uploads = [(request.query_params.get("name", "image"), bytes(body))] if body else []
    if not uploads or not any(data for _, data in uploads):
        raise BadRequest(400, "no image in the request: send image bytes, or files in a "
                         "multipart form")  # fmt: skip
    if len(uploads) > limits.max_files:
        raise BadRequest(400, f"{len(uploads)} images in one request; at most "
                         f"{limits.max_files} (--max_files)")  # fmt: skip
    empty = [name for name, data in uploads if not data]
    if empty:
        raise BadRequest(400, f"{empty[0]}: empty file")
    return uploads


async def _form_files(headers, body: bytes, max_files: int) -> list[tuple[str, bytes]]:
    from starlette.formparsers import (  # optional: the serve extra
        MultiPartException,
        MultiPartParser,
    )

    async def stream():
        yield body

    try:
        form = await MultiPartParser(headers, stream(), max_files=max_files + 1,
                                     max_fields=100).parse()  # fmt: skip
    except MultiPartException as error:
        raise BadRequest(400, f"malformed multipart form: {error.message}") from None
    files = []
    for _, value in form.multi_items():
        if hasattr(value, "read"):  # an UploadFile
            files.append((value.filename or "image", await value.read()))
    return files
