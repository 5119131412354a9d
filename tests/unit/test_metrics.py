"""WorkerMetrics: each method moves the series an operator's dashboard reads."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from media_worker.observability.metrics import WorkerMetrics
from media_worker.queue.port import QueueDepth


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    """The value of one series as a scraper would read it from the exposition text."""
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics(thumbnail_sizes=["small", "large"])


def test_instances_do_not_share_a_registry() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.retry()
    assert sample(first, "media_worker_retries_total") == 1
    assert sample(second, "media_worker_retries_total") == 0


def test_job_outcomes_count_separately(metrics: WorkerMetrics) -> None:
    metrics.job_finished("ready", "image", 0.2)
    metrics.job_finished("ready", "video", 3.0)
    metrics.job_finished("failed_permanent", "image", 0.1)
    assert sample(metrics, "media_worker_jobs_total", outcome="ready") == 2
    assert sample(metrics, "media_worker_jobs_total", outcome="failed_permanent") == 1


def test_every_known_outcome_is_exported_from_the_start(metrics: WorkerMetrics) -> None:
    assert sample(metrics, "media_worker_jobs_total", outcome="poison") == 0


def test_job_duration_histogram_counts_by_kind(metrics: WorkerMetrics) -> None:
    metrics.job_finished("ready", "image", 0.3)
    metrics.job_finished("ready", "image", 4.0)
    assert sample(metrics, "media_worker_job_duration_seconds_count", kind="image") == 2
    assert sample(metrics, "media_worker_job_duration_seconds_sum", kind="image") == 4.3
    assert sample(metrics, "media_worker_job_duration_seconds_bucket", kind="image",
                  le="0.5") == 1


def test_an_unexpected_or_missing_kind_is_unknown(metrics: WorkerMetrics) -> None:
    metrics.job_finished("poison", None, 0.01)
    metrics.job_finished("skipped", "audio", 0.01)
    assert sample(metrics, "media_worker_job_duration_seconds_count", kind="unknown") == 2


def test_stage_histogram_counts_by_stage_and_kind(metrics: WorkerMetrics) -> None:
    metrics.stage_finished("render", "video", 12.0)
    assert sample(metrics, "media_worker_stage_duration_seconds_count", stage="render",
                  kind="video") == 1


def test_bytes_and_thumbnails_add_up(metrics: WorkerMetrics) -> None:
    metrics.add_input_bytes(1000)
    metrics.add_output_bytes(300)
    metrics.add_output_bytes(200)
    metrics.thumbnail_stored("small")
    assert sample(metrics, "media_worker_input_bytes_total") == 1000
    assert sample(metrics, "media_worker_output_bytes_total") == 500
    assert sample(metrics, "media_worker_thumbnails_total", size="small") == 1
    assert sample(metrics, "media_worker_thumbnails_total", size="large") == 0


def test_in_flight_goes_back_down_when_the_job_raises(metrics: WorkerMetrics) -> None:
    seen_inside: list[float | None] = []

    def job() -> None:
        with metrics.tracking_in_flight():
            seen_inside.append(sample(metrics, "media_worker_jobs_in_flight"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        job()
    assert seen_inside == [1]
    assert sample(metrics, "media_worker_jobs_in_flight") == 0


def test_background_failures_are_counted_by_loop(metrics: WorkerMetrics) -> None:
    metrics.background_failure("heartbeat")
    metrics.background_failure("heartbeat")
    name = "media_worker_background_failures_total"
    assert sample(metrics, name, thread="heartbeat") == 2
    assert sample(metrics, name, thread="reconciler") == 0


def test_engine_errors_are_labelled_by_class_name(metrics: WorkerMetrics) -> None:
    class CorruptMediaError(Exception):
        pass

    metrics.engine_error(CorruptMediaError("bad bytes"))
    metrics.engine_error("CorruptMediaError")
    assert sample(metrics, "media_worker_engine_errors_total", error="CorruptMediaError") == 2


def test_queue_depth_sets_every_state(metrics: WorkerMetrics) -> None:
    metrics.set_queue_depth(visible=7, in_flight=2, delayed=1, dead_letter=3,
                            oldest_age_seconds=42.5)
    assert sample(metrics, "media_worker_queue_messages", state="visible") == 7
    assert sample(metrics, "media_worker_queue_messages", state="in_flight") == 2
    assert sample(metrics, "media_worker_queue_messages", state="delayed") == 1
    assert sample(metrics, "media_worker_queue_messages", state="dead_letter") == 3
    assert sample(metrics, "media_worker_queue_oldest_message_age_seconds") == 42.5


def test_unknown_queue_figures_are_absent_or_nan_not_zero(metrics: WorkerMetrics) -> None:
    metrics.set_queue_depth(visible=1, in_flight=0, dead_letter=3)
    metrics.set_queue_depth(visible=1, in_flight=0, dead_letter=None, oldest_age_seconds=None)
    assert sample(metrics, "media_worker_queue_messages", state="dead_letter") is None
    assert math.isnan(sample(metrics, "media_worker_queue_oldest_message_age_seconds") or 0)


def test_queue_depth_can_come_straight_from_the_queue_port(metrics: WorkerMetrics) -> None:
    metrics.observe_queue(QueueDepth(visible=4, in_flight=1, delayed=0, dead_letter=2))
    assert sample(metrics, "media_worker_queue_messages", state="visible") == 4
    assert sample(metrics, "media_worker_queue_messages", state="dead_letter") == 2


def test_dependency_up_is_one_or_zero(metrics: WorkerMetrics) -> None:
    metrics.set_dependency("database", up=False)
    metrics.set_dependency("queue", up=True)
    assert sample(metrics, "media_worker_dependency_up", dependency="database") == 0
    assert sample(metrics, "media_worker_dependency_up", dependency="queue") == 1


def test_exposition_has_no_created_series(metrics: WorkerMetrics) -> None:
    metrics.job_finished("ready", "image", 1.0)
    assert b"_created" not in metrics.render()


def test_metric_names_lists_what_the_exposition_can_contain(metrics: WorkerMetrics) -> None:
    names = metrics.metric_names()
    assert {"media_worker_jobs_total", "media_worker_job_duration_seconds_bucket",
            "media_worker_queue_messages", "media_worker_dependency_up"} <= names
    assert all(name.startswith("media_worker_") for name in names)


def test_openmetrics_is_served_when_asked_for(metrics: WorkerMetrics) -> None:
    body, content_type = metrics.render_for("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
