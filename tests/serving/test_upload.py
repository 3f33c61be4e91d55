"""Publishing a saved model over HTTP: `POST /v1/models/{name}/versions` with a tar archive.

In process (the app's own lifespan through Starlette's test client): the archive handling is
what is tested here; the real server's transport is covered by test_api.py.
"""

from __future__ import annotations

import io
import tarfile
import time

import pytest
from fastapi.testclient import TestClient

from deepcast.serving.app import create_app
from deepcast.serving.store import ModelStore

from .conftest import API_KEY, HEADERS, records


def _archive(files: dict[str, bytes], gzip: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def client(tmp_path, served_forecaster):
    _, path = served_forecaster
    store = ModelStore(tmp_path / "store")
    store.publish(path, "syn")
    with TestClient(create_app(store, api_keys=(API_KEY,), watch_seconds=0.05)) as client:
        yield client, store, path


def _post(client, name: str, body: bytes, **params):
    return client.post(
        f"/v1/models/{name}/versions",
        content=body,
        params=params,
        headers={**HEADERS, "content-type": "application/gzip"},
    )


def test_an_uploaded_model_is_published_and_serves_like_the_file(
    client, serving_data, served_forecaster
):
    client, store, path = client
    forecaster = served_forecaster[0]
    files = {f"model/{p.name}": p.read_bytes() for p in path.iterdir()}
    answer = _post(client, "syn", _archive(files), promote="true")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": "syn", "version": "2", "production": "2"}
    flat = {p.name: p.read_bytes() for p in path.iterdir()}  # files at the archive's root
    answer = _post(client, "other", _archive(flat, gzip=False))
    assert answer.json() == {"model": "other", "version": "1", "production": "1"}
    for p in path.iterdir():  # byte for byte what was saved
        assert (store.path("other", "1") / p.name).read_bytes() == p.read_bytes()
    kinds = [(e["type"], e["version"]) for e in store.db.events("syn")]
    assert kinds[-2:] == [("published", "2"), ("promoted", "2")]
    deadline = time.monotonic() + 60
    while client.get("/ready").json()["models"] != {"syn": "2", "other": "1"}:
        assert time.monotonic() < deadline, "the uploaded version was never served"
        time.sleep(0.05)
    window = serving_data[2].iloc[:30]
    served = client.post("/v1/models/syn/forecast", json={"observations": records(window)})
    assert served.json()["version"] == "2"
    expected = forecaster.predict(window).iloc[-1].to_numpy()
    got = [step["value"] for step in served.json()["forecast"]]
    assert got == pytest.approx(expected.tolist(), rel=1e-5)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../evil.json": b"{}"}, "not allowed"),
        ({"model/sub/deep.json": b"{}"}, "not a plain file"),
        ({"a/forecaster.json": b"{}", "b/model.keras": b""}, "one model directory"),
        ({"forecaster.json": b"{not json"}, "forecaster.json"),
    ],
)
def test_a_bad_archive_is_a_422_naming_it_and_publishes_nothing(client, files, message):
    client, store, _ = client
    answer = _post(client, "syn", _archive(files))
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
    assert store.versions("syn") == ["1"]


def test_uploads_need_the_key_a_tar_and_a_size_under_the_limit(client):
    client, store, _ = client
    refused = client.post("/v1/models/syn/versions", content=b"x")
    assert refused.status_code == 401
    garbage = _post(client, "syn", b"\x00\x01 not an archive")
    assert garbage.status_code == 422 and "not a tar archive" in garbage.json()["detail"]
    bad_name = _post(client, "..", _archive({"a.json": b"{}"}))
    assert bad_name.status_code in (404, 422)
    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w") as tar:
        info = tarfile.TarInfo("model.keras")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    answer = _post(client, "syn", link.getvalue())
    assert answer.status_code == 422 and "not a plain file" in answer.json()["detail"]
    assert store.versions("syn") == ["1"]
