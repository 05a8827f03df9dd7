"""The asynchronous jobs API (/v1/jobs) and the shared cache tier of `sluice serve
--database-url`, with real workers, a real PostgreSQL and real HTTP clients."""
import json
import pathlib

import numpy as np
import pytest
import requests

from conftest_pg import (MODEL_NAME, PgCluster, Server, Worker, completion_audit, connect,  # noqa: F401
                         pg_cluster, pg_dsn, processes, reference_vectors, wait_until)


def wait_job(server, job_id, timeout=60):
    result = {}

    def done():
        r = requests.get(f"{server.url}/v1/jobs/{job_id}", timeout=10)
        assert r.status_code == 200, r.text
        result.update(r.json())
        return result["status"] not in ("pending", "processing")

    wait_until(done, timeout, what=f"job {job_id}")
    return result


def test_job_lifecycle_returns_the_vectors_of_the_sync_api(pg_dsn, processes):
    server = Server(pg_dsn)
    processes.append(server)
    processes.append(Worker(pg_dsn))
    texts = ["the first document", "ünïcödé text ☕", "a third one"]
    r = requests.post(f"{server.url}/v1/jobs", json={"model": MODEL_NAME, "input": texts,
                                                      "priority": 3}, timeout=10)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending" and isinstance(body["id"], int)
    job = wait_job(server, body["id"])
    assert job["status"] == "completed", job
    assert job["model"] == MODEL_NAME and job["priority"] == 3 and job["attempt"] == 1
    assert [d["index"] for d in job["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in job["data"])
    got = np.array([d["embedding"] for d in job["data"]], dtype=np.float32)
    sync = requests.post(f"{server.url}/v1/embeddings", json={"input": texts}, timeout=30).json()
    want = np.array([d["embedding"] for d in sync["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got, reference_vectors(texts), atol=1e-6)


def test_plain_sql_insert_is_computed_and_readable_over_http(pg_dsn, processes):
    server = Server(pg_dsn)
    processes.append(server)
    processes.append(Worker(pg_dsn))
    with connect(pg_dsn) as conn:
        job_id = conn.execute(
            "INSERT INTO sluice.jobs (model, input) VALUES (%s, %s::jsonb) RETURNING id",
            (MODEL_NAME, json.dumps(["inserted with SQL"]))).fetchone()[0]
    job = wait_job(server, job_id)
    assert job["status"] == "completed"
    np.testing.assert_allclose(np.array(job["data"][0]["embedding"], dtype=np.float32),
                               reference_vectors(["inserted with SQL"])[0], atol=1e-6)
    with connect(pg_dsn) as conn:
        row = conn.execute("SELECT result, result_dim FROM sluice.jobs WHERE id = %s",
                           (job_id,)).fetchone()
    stored = np.frombuffer(row[0], dtype="<f4").reshape(-1, row[1])
    np.testing.assert_array_equal(stored[0], np.array(job["data"][0]["embedding"], np.float32))


def test_cancel(pg_dsn, processes):
    server = Server(pg_dsn)  # no worker: the job stays pending
    processes.append(server)
    job_id = requests.post(f"{server.url}/v1/jobs", json={"input": "x"}, timeout=10).json()["id"]
    r = requests.delete(f"{server.url}/v1/jobs/{job_id}", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert requests.get(f"{server.url}/v1/jobs/{job_id}", timeout=10).json()["status"] == "cancelled"
    again = requests.delete(f"{server.url}/v1/jobs/{job_id}", timeout=10)
    assert again.status_code == 409, again.text
    # A worker started later does not touch it.
    worker = Worker(pg_dsn)
    processes.append(worker)
    wait_until(lambda: "started" in worker.logs(), 30, what="worker start")
    assert requests.get(f"{server.url}/v1/jobs/{job_id}", timeout=10).json()["status"] == "cancelled"


@pytest.mark.parametrize("method,path,body,status,code", [
    ("POST", "/v1/jobs", "not json", 400, "invalid_argument"),
    ("POST", "/v1/jobs", "[1]", 400, "invalid_argument"),
    ("POST", "/v1/jobs", {}, 400, "invalid_argument"),
    ("POST", "/v1/jobs", {"input": []}, 400, "invalid_argument"),
    ("POST", "/v1/jobs", {"input": ["a", 2]}, 400, "invalid_argument"),
    ("POST", "/v1/jobs", {"input": ["a", ""]}, 400, "invalid_argument"),
    ("POST", "/v1/jobs", {"input": "a", "priority": "high"}, 400, "invalid_argument"),
    ("POST", "/v1/jobs", {"input": "a", "priority": 2**40}, 400, "invalid_argument"),
    ("POST", "/v1/jobs", {"input": "a", "model": "other"}, 404, "not_found"),
    ("POST", "/v1/jobs", {"input": ["x"] * 10001}, 413, "too_large"),
    ("GET", "/v1/jobs/123456", None, 404, "not_found"),
    ("GET", "/v1/jobs/abc", None, 400, "invalid_argument"),
    ("GET", "/v1/jobs/-1", None, 400, "invalid_argument"),
    ("DELETE", "/v1/jobs/123456", None, 404, "not_found"),
    ("PUT", "/v1/jobs/1", None, 405, "method_not_allowed"),
])
def test_bad_requests(pg_dsn, processes, method, path, body, status, code):
    if not processes:
        processes.append(Server(pg_dsn))
    server = processes[0]
    data = body if isinstance(body, str) else (json.dumps(body) if body is not None else None)
    r = requests.request(method, server.url + path, data=data, timeout=30)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_payload_over_the_limit_is_413(pg_dsn, processes):
    server = Server(pg_dsn, "--payload-limit", "1000")
    processes.append(server)
    r = requests.post(f"{server.url}/v1/jobs", json={"input": ["x" * 2000]}, timeout=10)
    assert r.status_code == 413


def metric(server, name) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def test_shared_cache_tier_serves_another_replica(pg_dsn, processes):
    a = Server(pg_dsn)
    processes.append(a)
    texts = ["shared between replicas", "second text"]
    first = requests.post(f"{a.url}/v1/embeddings", json={"input": texts}, timeout=30).json()
    with connect(pg_dsn) as conn:
        wait_until(lambda: conn.execute("SELECT count(*) FROM sluice.embedding_cache")
                   .fetchone()[0] == 2, 10, what="cache rows")
    b = Server(pg_dsn)  # a fresh replica: empty in-process cache
    processes.append(b)
    second = requests.post(f"{b.url}/v1/embeddings", json={"input": texts}, timeout=30).json()
    assert metric(b, "sluice_cache_l2_hits_total") == 2
    assert metric(b, "sluice_cache_misses_total") == 0
    for x, y in zip(first["data"], second["data"]):
        np.testing.assert_array_equal(np.array(x["embedding"], np.float32),
                                      np.array(y["embedding"], np.float32))
    requests.post(f"{b.url}/v1/embeddings", json={"input": texts[:1]}, timeout=30)
    assert metric(b, "sluice_cache_l1_hits_total") == 1


def test_database_down_jobs_503_sync_api_answers_and_recovers(processes):
    cluster = PgCluster()  # its own cluster: this test stops it
    try:
        out = __import__("conftest_pg").sluice("migrate", "--database-url", cluster.dsn)
        assert out.returncode == 0, out.stderr
        server = Server(cluster.dsn)
        processes.append(server)
        cluster.pg_ctl("-m", "immediate", "stop")
        r = requests.post(f"{server.url}/v1/jobs", json={"input": ["x"]}, timeout=30)
        assert r.status_code == 503, r.text
        assert requests.get(f"{server.url}/v1/jobs/1", timeout=30).status_code == 503
        for i in range(5):
            e = requests.post(f"{server.url}/v1/embeddings", json={"input": [f"down {i}"]},
                              timeout=30)
            assert e.status_code == 200, e.text
        assert metric(server, "sluice_cache_shared_unavailable_total") >= 1
        assert "bypass" in server.logs().lower() or "down" in server.logs().lower()
        cluster.restart()

        last = []  # the latest answer, for the failure message

        def accepts_jobs():
            r = requests.post(f"{server.url}/v1/jobs", json={"input": ["x"]}, timeout=30)
            last[:] = [r.status_code, r.text[:500]]
            return r.status_code == 202

        try:
            wait_until(accepts_jobs, 30, interval=0.5, what="jobs API back")
        except AssertionError as e:
            data = pathlib.Path((cluster.dir / "datadir").read_text().strip())
            pg_log = (data / "server.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{e}; last answer {last}\nserver log:\n"
                                 f"{server.logs()[-3000:]}\nPostgreSQL log:\n{pg_log}") from e
        before = metric(server, "sluice_cache_shared_written_total")
        requests.post(f"{server.url}/v1/embeddings", json={"input": ["after the restart"]},
                      timeout=30)
        wait_until(lambda: metric(server, "sluice_cache_shared_written_total") > before, 30,
                   interval=0.5, what="cache tier back")
    finally:
        cluster.stop()
