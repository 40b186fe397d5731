"""Micro-batching for the server: the images of concurrent requests scored together in one worker
thread."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gender_cls.serve.settings import ServeLimits


class Batcher:
    """Scores the images of concurrent requests together: a batch closes at `max_batch`
    images or `max_wait_ms` after its first, and runs in one worker thread (runners are not
    thread-safe), so the event loop keeps accepting requests meanwhile."""

    def __init__(self, score, limits: ServeLimits, observe_batch):
        self.score, self.limits, self.observe_batch = score, limits, observe_batch
        self.queue: asyncio.Queue = asyncio.Queue()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self.task: asyncio.Task | None = None

    async def submit(self, images: list[np.ndarray]) -> list[np.ndarray]:
        if self.task is None:
            self.task = asyncio.create_task(self._run())
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in images]
        for image, future in zip(images, futures, strict=True):
            self.queue.put_nowait((image, future))
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.limits.max_wait_ms / 1000
            while len(batch) < self.limits.max_batch:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(),
                                                        max(0.0, deadline - loop.time())))  # fmt: skip
                except TimeoutError:
                    break
            images = np.stack([image for image, _ in batch])
            self.observe_batch(len(batch))
            try:
                scores = await loop.run_in_executor(self.worker, self.score, images)
            except Exception as error:  # the model failed: every waiting request learns it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), score in zip(batch, scores, strict=True):
                if not future.done():
                    future.set_result(score)
