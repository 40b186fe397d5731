"""gender-cls serve under load, against predict.py, on this machine (requests to 127.0.0.1 only):

- 1, 4 and 16 concurrent clients, each request one image: images/s, p50/p99 latency, errors,
  server memory before and after;
- baselines: predict.py started once per image (a sample), and once for all the images;
- identical answers: every /predict answer equals predict.py --json on the same file.

    python benchmarks/bench_serve.py [--images ../shared/data/faces/test] [--requests 400]
        [--model_path RUN]

Without --model_path a small MobileNetV2 (alpha 0.35, 64 px, TFLite) is trained here first.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench_engines import small_run  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(url: str, path: Path) -> tuple[float, list | None]:
    """(seconds, answer or None on an error) of one request."""
    request = urllib.request.Request(f"{url}/predict?name={path.name}", data=path.read_bytes(),
                                     headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    except (urllib.error.URLError, OSError):
        answer = None
    return time.perf_counter() - start, answer


def load(url: str, files: list[Path], clients: int) -> dict:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda f: post(url, f), files))
    seconds = time.perf_counter() - start
    latencies = sorted(t for t, _ in results)
    return {"images/s": len(files) / seconds, "p50 ms": 1000 * statistics.median(latencies),
            "p99 ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
            "errors": sum(a is None for _, a in results)}  # fmt: skip


def predict_py(run: Path, files: list[Path]) -> list[dict]:
    done = subprocess.run([sys.executable, str(REPO / "predict.py"), "--model_path", str(run),
                           *map(str, files), "--json"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(done.stdout)


@click.command()
@click.option("--images", default=str(REPO.parent / "shared" / "data" / "faces" / "test"))
@click.option("--requests", default=400, help="Requests per concurrency level.")
@click.option("--model_path", default=None, help="A run with an export; default: trained here.")
@click.option("--one_process_sample", default=20, help="Images for the process-per-image baseline.")
def main(images: str, requests: int, model_path: str | None, one_process_sample: int) -> None:
    files = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(model_path) if model_path else small_run(Path(tmp), 64)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "gender_cls", "serve", "--model_path",
                                   str(run), "--port", str(port)], stderr=subprocess.DEVNULL)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            memory_before = rss_mb(server.pid)
            answers = [post(url, f)[1][0] for f in files]
            expected = predict_py(run, files)
            same = all(a == {**e, "path": Path(e["path"]).name}
                       for a, e in zip(answers, expected, strict=True))  # fmt: skip
            print(f"identical answers on {len(files)} images of {images}: {same}")
            work = (files * (requests // len(files) + 1))[:requests]
            print(f"{'clients':>8} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
            for clients in (1, 4, 16):
                row = load(url, work, clients)
                print(f"{clients:>8} {row['images/s']:>9.1f} {row['p50 ms']:>8.1f} "
                      f"{row['p99 ms']:>8.1f} {row['errors']:>7}", flush=True)  # fmt: skip
            print(f"server memory: {memory_before:.0f} MB before, {rss_mb(server.pid):.0f} MB "
                  "after")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
        sample = files[:one_process_sample]
        start = time.perf_counter()
        for f in sample:
            predict_py(run, [f])
        per_image = len(sample) / (time.perf_counter() - start)
        start = time.perf_counter()
        predict_py(run, work)
        all_at_once = len(work) / (time.perf_counter() - start)
        print(f"predict.py, a process per image: {per_image:.1f} images/s ({len(sample)} images)")
        print(f"predict.py, one process for all {len(work)}: {all_at_once:.1f} images/s")


if __name__ == "__main__":
    main()
