"""Dynamic micro-batching: concurrent requests to one model are scored as one batch.

No timer: a batch is whatever queued up while the previous one was being scored, so a lone
request waits for nothing and a burst is scored in few model calls. The task that scores runs only
while rows are queued, so a batcher dropped with its model (an alias swap) leaves no task behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from runtime.serving.model import Scored

MAX_BATCH_ROWS = 256
"""Most rows scored in one model call."""


class MicroBatcher:
    """Queues ``submit``-ted rows and scores them in batches with ``predict``.

    ``executor`` None scores on the event loop (for fast predictors, where handing work to a
    thread costs more than the prediction); otherwise in the executor, so the loop keeps
    accepting requests that then form the next batch.
    """

    def __init__(
        self,
        predict: Callable[[Sequence[dict[str, Any]]], Scored],
        *,
        max_rows: int = MAX_BATCH_ROWS,
        executor: Executor | None = None,
    ) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._executor = executor
        # Only the event loop's thread touches it: a deque, not an asyncio.Queue (whose
        # getter/putter bookkeeping nothing here waits on).
        self._queue: deque[tuple[Sequence[dict[str, Any]], asyncio.Future[Scored]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        """Model calls made so far."""
        self.rows = 0

    async def submit(self, rows: Sequence[dict[str, Any]]) -> Scored:
        """Score ``rows`` (with whatever else is queued); raises what the model raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Scored] = loop.create_future()
        self._queue.append((rows, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return await future

    async def close(self) -> None:
        """Wait until every queued row is scored (no task is left running)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Ends when the queue is empty; the next submit starts a new run.
        queue = self._queue
        while queue:
            batch = [queue.popleft()]
            # Let handlers that are ready to submit do so before the batch closes.
            await asyncio.sleep(0)
            size = len(batch[0][0])
            while size < self._max_rows and queue:
                item = queue.popleft()
                batch.append(item)
                size += len(item[0])
            rows = [row for item, _ in batch for row in item]
            try:
                scored = await self._score(loop, rows)
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0][1], error=error)
                    continue
                # One request's rows must not fail the others: score each on its own.
                for item, future in batch:
                    try:
                        result = await self._score(loop, item)
                    except Exception as own:
                        _settle(future, error=own)
                    else:
                        _settle(future, result=result)
                continue
            self.batches += 1
            self.rows += len(rows)
            start = 0
            for item, future in batch:
                end = start + len(item)
                if not future.done():
                    future.set_result(
                        Scored(
                            scored.predictions[start:end],
                            None
                            if scored.probabilities is None
                            else scored.probabilities[start:end],
                        )
                    )
                start = end

    async def _score(
        self, loop: asyncio.AbstractEventLoop, rows: Sequence[dict[str, Any]]
    ) -> Scored:
        if self._executor is None:
            return self._predict(rows)
        return await loop.run_in_executor(self._executor, self._predict, rows)


def _settle(
    future: asyncio.Future[Scored],
    *,
    result: Scored | None = None,
    error: BaseException | None = None,
) -> None:
    # A caller that went away (client disconnect) cancelled its future.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
