"""Prometheus metrics of one server process (prometheus_client), served at ``/metrics``.

Names and labels (``deployment`` is the served deployment, ``version`` the model version
that answered, ``protocol`` ``mlflow`` or ``v2``, ``code`` the HTTP status):

- ``cairn_requests_total{deployment,version,protocol,code}``: prediction requests answered
  (``version`` is ``""`` for requests refused before a model was picked).
- ``cairn_request_errors_total{deployment,protocol,kind,side}``: failed prediction requests
  by ``side``, ``client`` (a 4xx: the request's fault) or ``server`` (a 5xx: cairn or the
  model is broken), and ``kind``: ``bad_request`` (malformed body), ``signature`` (inputs
  that do not match the signature, or that an MLflow model refused), ``refused`` (the
  model raised ValueError or TypeError on values it cannot take, a 400),
  ``unsupported_media_type``, ``not_found``, ``not_ready`` (503), ``model`` (the model
  raised otherwise: a 500),
  ``too_large`` (a body beyond ``cairn serve --max-body``), ``disconnected`` (the client
  left, or missed the body deadline, before its body arrived; not answered).
- ``cairn_request_latency_seconds{deployment,version,protocol}``: histogram of the time from
  the body read to the response built, in seconds.
- ``cairn_prediction_log_records{deployment,state}``: the prediction log's counters
  (``submitted``, ``queued`` waiting now, ``committed``, ``dropped`` because the queue was
  full or the log closed), refreshed about every second and at each scrape.
- ``cairn_prediction_log_commit_errors{deployment}``: failed log commits (each retried).
- ``cairn_policy_revision{deployment}``: the traffic policy revision the server applies.
- ``cairn_model_version_loaded{deployment,version}``: 1 for each version loaded now.

With several workers (``cairn serve --workers N``) each worker is a process, and
prometheus_client's multiprocess mode adds their values up: ``cairn serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh temporary folder before the workers start, and
``/metrics`` then reads every worker's files. Gauges take the live workers' sum
(``livesum``), the revision their maximum (``livemax``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics", "multiprocess_dir"]

# Sub-millisecond to seconds: small tabular models answer in about a millisecond.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
LOG_STATES = ("submitted", "queued", "committed", "dropped")


def multiprocess_dir() -> str | None:
    """The folder of prometheus_client's multiprocess mode, when this process uses it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServerMetrics:
    """The metrics above for one deployment, with labelled children cached so that the
    request path does one dict lookup per metric."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode values live in files; a registry would only duplicate them.
        registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.registry = registry
        self.requests = Counter(
            "cairn_requests",
            "Prediction requests answered, by model version, protocol and HTTP status.",
            ["deployment", "version", "protocol", "code"],
            registry=registry,
        )
        self.errors = Counter(
            "cairn_request_errors",
            "Failed prediction requests by kind, and side: client (4xx) or server (5xx).",
            ["deployment", "protocol", "kind", "side"],
            registry=registry,
        )
        self.latency = Histogram(
            "cairn_request_latency_seconds",
            "Time to answer a prediction request, in seconds.",
            ["deployment", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.log_records = Gauge(
            "cairn_prediction_log_records",
            "Prediction log records by state (queued now; submitted, committed, dropped so far).",
            ["deployment", "state"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.log_errors = Gauge(
            "cairn_prediction_log_commit_errors",
            "Failed prediction log commits so far (each is retried).",
            ["deployment"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.revision = Gauge(
            "cairn_policy_revision",
            "The traffic policy revision this server applies.",
            ["deployment"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.loaded = Gauge(
            "cairn_model_version_loaded",
            "1 for each model version loaded and taking traffic.",
            ["deployment", "version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[tuple[str, str], Histogram] = {}
        self._errors: dict[tuple[str, str, int], Counter] = {}
        self._loaded: set[str] = set()

    def observe(self, version: str, protocol: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (version, protocol, code)
        counter = self._requests.get(key)
        if counter is None:
            counter = self.requests.labels(self.deployment, version, protocol, str(code))
            self._requests[key] = counter
        counter.inc()
        if code < 400:
            hist = self._latency.get((version, protocol))
            if hist is None:
                hist = self.latency.labels(self.deployment, version, protocol)
                self._latency[(version, protocol)] = hist
            hist.observe(seconds)

    def error(self, protocol: str, kind: str, status: int) -> None:
        """Count one failed request of ``kind`` (see the module doc) answered with HTTP
        ``status`` (5xx: the server's side, else the client's)."""
        key = (protocol, kind, status)
        counter = self._errors.get(key)
        if counter is None:
            side = "server" if status >= 500 else "client"
            counter = self.errors.labels(self.deployment, protocol, kind, side)
            self._errors[key] = counter
        counter.inc()

    def set_log_stats(self, stats: Mapping[str, object]) -> None:
        """Copy the prediction log's counters (PredictionLog.stats) into the gauge."""
        for state in LOG_STATES:
            value = stats.get(state)
            if isinstance(value, int | float):
                self.log_records.labels(self.deployment, state).set(value)
        errors = stats.get("errors")
        if isinstance(errors, int | float):
            self.log_errors.labels(self.deployment).set(errors)

    def set_endpoint(self, revision: int | None, versions: list[int]) -> None:
        """Record the policy revision and the loaded versions."""
        if revision is not None:
            self.revision.labels(self.deployment).set(revision)
        now = {str(v) for v in versions}
        for gone in self._loaded - now:
            self.loaded.labels(self.deployment, gone).set(0)
        for version in now:
            self.loaded.labels(self.deployment, version).set(1)
        self._loaded = now

    def render(self) -> bytes:
        """The text exposition format of every metric (all workers' in multiprocess mode)."""
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """Drop this process's live gauges (multiprocess mode) when the worker stops."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())
