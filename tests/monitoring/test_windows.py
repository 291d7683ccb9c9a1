"""The current window read back from a prediction log written in its documented format."""

import io
from datetime import UTC, datetime

import orjson
import pytest
from sklearn.datasets import load_iris

from cairn.catalog import CatalogChunkIndex, open_catalog
from cairn.data import DataStore, NotFound
from cairn.monitoring import compute_drift
from cairn.monitoring.windows import read_window
from cairn.storage import ChunkStore, MemoryObjectStore

DAY = 86_400.0
T0 = datetime(2025, 1, 1, tzinfo=UTC).timestamp()


@pytest.fixture
def data(tmp_path):
    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    chunks = ChunkStore(MemoryObjectStore(), index=CatalogChunkIndex(catalog))
    yield DataStore(catalog, chunks)
    catalog.dispose()


def _record(i, t, rows, outputs, *, shadow=False, status="ok"):
    return {
        "request_id": f"r{i}",
        "time": t,
        "deployment": "iris",
        "model": "iris",
        "version": 1,
        "target": "champion",
        "protocol": "mlflow",
        "inputs": {"columns": ["sl", "sw", "pl", "pw"], "data": rows},
        "outputs": outputs,
        "latency_ms": 1.0,
        "shadow": shadow,
        "status": status,
        "error": None,
    }


@pytest.fixture
def log(data):
    """Three days of iris requests (two rows each), a shadow copy of each and a failed
    request per day; one file per half day, as the log batches them."""
    X, y = load_iris(return_X_y=True)
    data.create_repo("predictions")
    files: dict[str, list[bytes]] = {}
    for i in range(0, 150, 2):
        t = T0 + (i / 150) * 3 * DAY
        day = datetime.fromtimestamp(t, UTC)
        path = (
            f"/iris/{day.date().isoformat()}/{day:%Y%m%dT}{'00' if day.hour < 12 else '12'}.jsonl"
        )
        rows = X[i : i + 2].tolist()
        lines = files.setdefault(path, [])
        lines.append(orjson.dumps(_record(i, t, rows, y[i : i + 2].tolist())))
        lines.append(orjson.dumps(_record(i, t, rows, [0, 0], shadow=True)))
        if i % 50 == 0:
            lines.append(orjson.dumps(_record(1000 + i, t, rows, None, status="error")))
    for path, lines in files.items():
        data.put_files("predictions", None, [(path, io.BytesIO(b"\n".join(lines) + b"\n"))])
    return X, y


def test_whole_log_without_shadows_and_failures(data, log):
    X, y = log
    window = read_window(data, "iris")
    assert len(window) == 150
    assert window.inputs.columns.tolist() == ["sl", "sw", "pl", "pw"]
    assert window.inputs.to_numpy().tolist() == X.tolist()
    assert window.outputs.prediction.tolist() == y.tolist()
    assert window.requests.row.tolist() == [0, 1] * 75
    assert window.requests.time.is_monotonic_increasing
    assert len(read_window(data, "iris", include_shadow=True)) == 300


def test_windows_by_time_and_by_count(data, log):
    X, _ = log
    second_day = read_window(data, "iris", since=T0 + DAY, until=datetime(2025, 1, 3))
    assert (
        (second_day.requests.time >= T0 + DAY) & (second_day.requests.time < T0 + 2 * DAY)
    ).all()
    assert len(second_day) == 50
    newest = read_window(data, "iris", last=11)
    assert len(newest) == 11
    assert newest.inputs.to_numpy().tolist() == X[-11:].tolist()
    assert newest.predictions().columns.tolist() == ["request_id", "time", "prediction"]


def test_a_window_feeds_the_drift_report(data, log):
    """Iris is sorted by class: the first day holds setosa, the last virginica."""
    first = read_window(data, "iris", until=T0 + DAY)
    third = read_window(data, "iris", since=T0 + 2 * DAY)
    assert compute_drift(first.inputs, third.inputs).drifted
    assert compute_drift(first.inputs, first.inputs).drifted_features == []


def test_unknown_deployment_is_not_found(data, log):
    with pytest.raises(NotFound):
        read_window(data, "nope")
