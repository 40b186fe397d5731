"""gender-cls serve --engine ray: the same app on Ray Serve, as many replicas as asked, each
with its own model and batcher, behind Ray's HTTP proxy (on a local cluster or an existing one)."""

from __future__ import annotations

import logging

from gender_cls.errors import UserError
from gender_cls.predict.ray_engine import start
from gender_cls.serve.app import app_for
from gender_cls.serve.settings import ServeSettings

log = logging.getLogger(__name__)


class Replica:
    """One Ray Serve replica: the FastAPI app of serve.py, fed each request as ASGI."""

    def __init__(self, settings: ServeSettings):

        self.app = app_for(settings)

    async def __call__(self, request):
        from starlette.responses import Response  # optional: the serve extra

        body = await request.body()
        answer = {"status": 500, "headers": [], "body": b""}

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], message["headers"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.app(request.scope, receive, send)
        headers = {k.decode(): v.decode() for k, v in answer["headers"]
                   if k.lower() != b"content-length"}  # fmt: skip
        return Response(answer["body"], status_code=answer["status"], headers=headers)


def deploy(settings: ServeSettings, replicas: int, host: str, port: int, address: str | None = None,
           blocking: bool = True):  # fmt: skip
    """Start Ray Serve's proxy on host:port and `replicas` replicas of the app; with `blocking`,
    serve until interrupted."""

    start(address)
    try:
        from ray import serve  # optional: Ray
    except ImportError:
        raise UserError("--engine ray needs Ray Serve: pip install 'ray[serve]'") from None
    serve.start(http_options={"host": host, "port": port})
    app = serve.deployment(Replica, name="gender_cls").options(num_replicas=replicas)
    log.info("ray serve: %d replica(s) on http://%s:%d/", replicas, host, port)
    return serve.run(app.bind(settings), name="gender_cls", route_prefix="/", blocking=blocking)
