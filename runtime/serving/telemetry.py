"""Serving metrics per the catalogue: Prometheus (`/metrics`) and the configured sink, batched.

The sink (CloudWatch in a cluster) gets, per flush interval and variant, the request and error
counts as one datum each and a sample of request latencies (enough for the p99 alarm), so the
number of PutMetricData calls does not grow with traffic.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from runtime.metrics import PREDICTION_ERRORS, PREDICTION_LATENCY, PREDICTIONS, Dimension
from runtime.publish import publisher
from runtime.settings import Settings

FLUSH_SECONDS = 60.0
LATENCY_SAMPLES = 300
"""Latency values kept per variant and interval (reservoir sample)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_log = logging.getLogger(__name__)


def _prometheus_name(metric: str) -> str:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in metric).lstrip("_")
    return f"mlops_{snake}"


class ServingTelemetry:
    """Counts requests, errors and latency by variant; ``flush`` sends them to the sink."""

    def __init__(self, settings: Settings, endpoint: str, *, shared: Path | None = None) -> None:
        self._settings = settings
        self._shared = shared
        """The folder where every serving process of the pod keeps its counts (Prometheus'
        multiprocess mode), or None: this process serves alone."""
        self._endpoint = endpoint
        self.registry = CollectorRegistry()
        labels = ["endpoint", "variant"]
        self._requests = Counter(
            _prometheus_name(PREDICTIONS.name),
            PREDICTIONS.description,
            labels,
            registry=self.registry,
        )
        self._errors = Counter(
            _prometheus_name(PREDICTION_ERRORS.name),
            PREDICTION_ERRORS.description,
            labels,
            registry=self.registry,
        )
        self._latency = Histogram(
            _prometheus_name(PREDICTION_LATENCY.name).replace("latency", "latency_seconds"),
            PREDICTION_LATENCY.description,
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._answered: dict[str, tuple[Counter, Histogram]] = {}
        """Per variant, its request counter and latency histogram (``labels`` looks them up
        under a lock on every call)."""
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._error_counts: dict[str, int] = defaultdict(int)
        self._samples: dict[str, list[float]] = defaultdict(list)
        self._seen: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def exposition(self) -> bytes:
        """`/metrics`: this process's counts, or every serving process's summed."""
        if self._shared is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._shared))
        return generate_latest(registry)

    def observe(self, variant: str, latency_ms: float, *, error: bool = False) -> None:
        """One request answered (or failed) by ``variant``."""
        if error:
            self._errors.labels(self._endpoint, variant).inc()
        else:
            answered = self._answered.get(variant)
            if answered is None:
                answered = self._answered[variant] = (
                    self._requests.labels(self._endpoint, variant),
                    self._latency.labels(self._endpoint, variant),
                )
            answered[0].inc()
            answered[1].observe(latency_ms / 1000)
        with self._lock:
            if error:
                self._error_counts[variant] += 1
                return
            self._counts[variant] += 1
            seen = self._seen[variant] = self._seen[variant] + 1
            samples = self._samples[variant]
            if len(samples) < LATENCY_SAMPLES:
                samples.append(latency_ms)
            elif (slot := random.randrange(seen)) < LATENCY_SAMPLES:
                samples[slot] = latency_ms

    def flush(self) -> None:
        """Send what was counted since the last flush to the configured sink."""
        with self._lock:
            counts, self._counts = self._counts, defaultdict(int)
            errors, self._error_counts = self._error_counts, defaultdict(int)
            samples, self._samples = self._samples, defaultdict(list)
            self._seen = defaultdict(int)
        if not counts and not errors:
            return
        try:
            with publisher(self._settings) as sink:
                for variant in sorted(set(counts) | set(errors)):
                    dims = {Dimension.endpoint: self._endpoint, Dimension.variant: variant}
                    sink.publish(PREDICTIONS, counts.get(variant, 0), dims)
                    sink.publish(PREDICTION_ERRORS, errors.get(variant, 0), dims)
                    for value in samples.get(variant, []):
                        sink.publish(PREDICTION_LATENCY, value, dims)
        except Exception as error:
            # Metrics are best effort; serving goes on.
            _log.warning("could not publish serving metrics: %s", str(error)[:200])

    def start(self, interval: float = FLUSH_SECONDS) -> None:
        def run() -> None:
            while not self._stop.wait(interval):
                self.flush()

        if self._thread is None:
            self._thread = threading.Thread(target=run, name="serving-metrics", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
