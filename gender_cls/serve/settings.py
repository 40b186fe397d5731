"""What a server runs, typed: the model, its decision options and the request limits; passed to
uvicorn workers through one environment variable and to Ray replicas as an object."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from gender_cls.artifacts.card import resolve_model
from gender_cls.errors import UserError
from gender_cls.predict.predictor import Predictor
from gender_cls.predict.runners import exported_file

INSTALL = "pip install 'gender_cls[serve]' (fastapi, uvicorn, python-multipart, prometheus-client)"
SETTINGS_VARIABLE = "GENDER_CLS_SERVE"  # how the uvicorn workers learn what to serve


@dataclass
class ServeLimits:
    max_batch: int = 32  # images scored together
    max_wait_ms: float = 5.0  # how long the first image of a batch waits for others
    max_upload_mb: float = 20.0  # one request's body
    max_files: int = 16  # images in one request
    request_timeout: float = 30.0  # seconds for a request to arrive whole (slow_clients.py)
    max_connections: int = 100  # open connections a worker takes; past it, 503


@dataclass
class ServeSettings:
    model_path: str
    threshold: float | None = None
    tta: int = 1
    limits: ServeLimits = field(default_factory=ServeLimits)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        values = json.loads(text)
        return cls(**{**values, "limits": ServeLimits(**values.get("limits", {}))})

    @classmethod
    def from_environment(cls) -> ServeSettings:
        """The settings serve_command left for its uvicorn workers."""
        return cls.from_json(os.environ[SETTINGS_VARIABLE])


def predictor_for(settings: ServeSettings) -> Predictor:
    """The Predictor `gender-cls serve` runs: an exported model only, so no TensorFlow."""

    model = resolve_model(settings.model_path)
    if exported_file(model) is None:
        raise UserError(f"{model.file}: serve runs an exported model (no TensorFlow); run "
                        f"gender-cls export --model_path {model.file} first")  # fmt: skip
    return Predictor(model, threshold=settings.threshold, tta=settings.tta)
