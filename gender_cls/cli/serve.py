"""gender-cls serve: the HTTP API and page over an exported model."""

from __future__ import annotations

import os
import socket

import rich_click as click

from gender_cls.cli.common import (
    CONTEXT,
    RAY_ADDRESS_OPTION,
    VERBOSE_OPTION,
    Finite,
    handle_errors,
    model_path_option,
    setup_logging,
)
from gender_cls.errors import UserError


@click.command("serve", context_settings=CONTEXT)
@model_path_option("Run directory with an export, or a .tflite/.onnx file with its .json.")
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    help="Server processes, each with its own copy of the model.",
)
@click.option(
    "--max_batch",
    type=click.IntRange(min=1),
    default=32,
    help="Images of concurrent requests scored together, at most.",
)
@click.option(
    "--max_wait_ms",
    type=Finite(min=0),
    default=5.0,
    help="How long an image waits for others to fill its batch.",
)
@click.option(
    "--max_upload_mb",
    type=Finite(min=0.001),
    default=20.0,
    help="Largest request body (413 past it).",
)
@click.option(
    "--max_files", type=click.IntRange(min=1), default=16, help="Most images in one request."
)
@click.option(
    "--request_timeout",
    type=Finite(min=0.1),
    default=30.0,
    help="Seconds a request may take to arrive whole (headers and body); then 408 and closed.",
)
@click.option(
    "--max_connections",
    type=click.IntRange(min=1),
    default=100,
    help="Open connections each worker takes; requests past it are answered 503.",
)
@click.option(
    "--threshold",
    type=Finite(0, 1),
    default=None,
    show_default="the model's",
    help="Binary models: decision threshold.",
)
@click.option(
    "--tta",
    type=click.IntRange(1, 10),
    default=1,
    help="Test-time augmentation views, as predict.py --tta.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    help="uvicorn here, or Ray Serve (replicas over a Ray cluster; pip install 'ray[serve]').",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=1,
    help="--engine ray: copies of the model answering requests.",
)
@RAY_ADDRESS_OPTION
@VERBOSE_OPTION
@handle_errors
def serve_command(model_path, host, port, workers, max_batch, max_wait_ms, max_upload_mb,
                  max_files, request_timeout, max_connections, threshold, tta, engine, replicas,
                  ray_address, verbose) -> None:  # fmt: skip
    """Serve a model over HTTP: POST /predict (images in, predict.py's JSON out), GET /model,
    /health, /metrics (Prometheus) and a page at / to drop images on.

    \b
    gender-cls serve --model_path runs/gender-mnv2 --port 8000
    curl -F files=@face.jpg http://127.0.0.1:8000/predict
    curl --data-binary @face.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8000/predict
    """
    setup_logging(verbose)
    from gender_cls.serve.settings import (  # loaded on use: a fast start-up
        INSTALL,
        SETTINGS_VARIABLE,
        ServeLimits,
        ServeSettings,
        predictor_for,
    )

    limits = ServeLimits(max_batch, max_wait_ms, max_upload_mb, max_files, request_timeout,
                         max_connections)  # fmt: skip
    settings = ServeSettings(str(model_path), threshold, tta, limits)
    predictor = predictor_for(settings)  # checked here, before any worker starts
    if engine == "ray":
        from gender_cls.serve.ray_replicas import deploy  # loaded on use: a fast start-up

        click.echo(f"serving {predictor.model_file} on Ray Serve: {replicas} replica(s) at "
                   f"http://{host}:{port}/", err=True)  # fmt: skip
        deploy(settings, replicas, host, port, ray_address)
        return
    try:
        import uvicorn  # optional: the serve extra
    except ImportError:
        raise UserError(f"serving needs uvicorn: {INSTALL}") from None
    check_port_free(host, port)
    click.echo(f"serving {predictor.model_file} ({', '.join(predictor.class_names)}) on "
               f"http://{host}:{port}/ with {workers} worker(s)", err=True)  # fmt: skip
    os.environ[SETTINGS_VARIABLE] = settings.to_json()
    try:
        uvicorn.run("gender_cls.serve.app:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="info" if verbose else "warning",
                    http="gender_cls.serve.slow_clients:RequestDeadline",
                    limit_concurrency=max_connections)  # fmt: skip
    except SystemExit as stop:  # uvicorn's 3: it could not start (the port taken since)
        if stop.code not in (None, 0):
            raise UserError(f"the server could not start on {host}:{port} (uvicorn exited "
                            f"{stop.code}); see the lines above") from None  # fmt: skip
        raise


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another program listens on, before any worker starts (uvicorn exits 3)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); pass another "
                            "--port, or stop the server that has it") from None  # fmt: skip
