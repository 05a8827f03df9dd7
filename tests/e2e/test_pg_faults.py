"""Fault tests of the PostgreSQL queue: real `sluice worker` and `sluice serve` processes, a
real throwaway cluster, real crashes (kill -9) and a real server restart."""
import json
import threading
import time

import numpy as np
import pytest
import requests

from conftest_pg import (MODEL, MODEL_NAME, Server, Worker, completion_audit, connect,  # noqa: F401
                         job_vectors, pg_cluster, pg_dsn, processes, reference_vectors, sluice,
                         wait_until)

DIM = 384


def enqueue_sql(dsn, batches: list[list[str]]) -> list[int]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "INSERT INTO sluice.jobs (model, input) "
            "SELECT %s, x FROM unnest(%s::jsonb[]) AS x ORDER BY 1 RETURNING id",
            (MODEL_NAME, [json.dumps(b) for b in batches])).fetchall()
    return sorted(r[0] for r in rows)


def counts(dsn) -> dict:
    with connect(dsn) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM sluice.jobs GROUP BY 1").fetchall())


def check_results(dsn, texts_by_job: dict[int, list[str]]):
    """Every job completed, exactly once, with the vectors `sluice embed` computes."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT id, status, result, result_dim FROM sluice.jobs").fetchall()
        audit = dict(conn.execute(
            "SELECT job_id, count(*) FROM completion_audit GROUP BY 1").fetchall())
    assert {r[0] for r in rows} == set(texts_by_job)
    assert all(r[1] == "completed" for r in rows), [r[:2] for r in rows if r[1] != "completed"]
    assert set(audit) == set(texts_by_job)
    assert set(audit.values()) == {1}, {k: v for k, v in audit.items() if v != 1}
    texts = sorted({t for ts in texts_by_job.values() for t in ts})
    ref = dict(zip(texts, reference_vectors(texts)))
    for job_id, _, result, dim in rows:
        assert dim == DIM
        got = job_vectors(result, dim)
        want = np.stack([ref[t] for t in texts_by_job[job_id]])
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"job {job_id}")


def test_kill9_mid_batch_jobs_finish_exactly_once_elsewhere(completion_audit, processes):
    dsn = completion_audit
    # Long inputs make a batch take seconds on one core, so the kill lands inside it.
    long_texts = [f"document {i}: " + " ".join(f"word{j % 97}" for j in range(200))
                  for i in range(48)]
    ids = enqueue_sql(dsn, [[t] for t in long_texts])
    victim = Worker(dsn, "--lease-seconds", "3", "--batch-jobs", "16",
                    "--reclaim-interval-seconds", "1")
    processes.append(victim)
    wait_until(lambda: counts(dsn).get("processing", 0) > 0, 60, interval=0.02,
               what="the first claim")
    time.sleep(0.3)
    victim.kill9()
    with connect(dsn) as conn:
        held = conn.execute("SELECT count(*) FROM sluice.jobs WHERE status = 'processing'"
                            ).fetchone()[0]
    assert held > 0, "the worker finished its batch before the kill"
    rescuer = Worker(dsn, "--lease-seconds", "30", "--reclaim-interval-seconds", "1")
    processes.append(rescuer)
    wait_until(lambda: counts(dsn) == {"completed": len(ids)}, 240, interval=0.5,
               what="all jobs completed")
    with connect(dsn) as conn:
        retried = conn.execute("SELECT count(*) FROM sluice.jobs WHERE attempt = 2").fetchone()[0]
    assert retried >= held
    check_results(dsn, {i: [t] for i, t in zip(ids, long_texts)})
    assert "reclaimed" in rescuer.logs()


def test_postgres_restart_under_load(pg_cluster, completion_audit, processes):
    dsn = completion_audit
    server = Server(dsn)
    processes.append(server)
    workers = [Worker(dsn, "--batch-jobs", "8") for _ in range(2)]
    processes.extend(workers)
    texts = [f"restart test sentence number {i}" for i in range(400)]
    ids = enqueue_sql(dsn, [[t] for t in texts[:200]])

    sync_failures, sync_ok = [], [0]
    stop = threading.Event()

    def sync_load():
        i = 0
        while not stop.is_set():
            r = requests.post(f"{server.url}/v1/embeddings",
                              json={"input": [f"sync {i % 50}"]}, timeout=30)
            if r.status_code == 200:
                sync_ok[0] += 1
            else:
                sync_failures.append((r.status_code, r.text))
            i += 1

    load = threading.Thread(target=sync_load)
    load.start()
    try:
        wait_until(lambda: counts(dsn).get("completed", 0) >= 20, 120, what="some progress")
        pg_cluster.restart()
        # Jobs enqueued over HTTP once the server has reconnected.
        http_ids = []
        for t in texts[200:]:
            deadline = time.monotonic() + 30
            while True:
                r = requests.post(f"{server.url}/v1/jobs", json={"input": [t]}, timeout=30)
                if r.status_code == 202:
                    http_ids.append(r.json()["id"])
                    break
                assert r.status_code == 503 and time.monotonic() < deadline, r.text
                time.sleep(0.2)
        wait_until(lambda: counts(dsn) == {"completed": 400}, 300, interval=0.5,
                   what="all jobs completed after the restart")
    finally:
        stop.set()
        load.join()
    assert sync_failures == [], sync_failures[:3]
    assert sync_ok[0] > 0
    check_results(dsn, {**{i: [t] for i, t in zip(ids, texts[:200])},
                        **{i: [t] for i, t in zip(http_ids, texts[200:])}})
    for w in workers:
        assert w.alive(), w.logs()


def test_thousands_of_jobs_several_workers(completion_audit, processes):
    dsn = completion_audit
    texts = [f"job {i} talks about topic {i % 37} and colour {i % 11}" for i in range(2000)]
    ids = enqueue_sql(dsn, [[t] for t in texts])
    workers = [Worker(dsn, "--batch-jobs", "32") for _ in range(3)]
    processes.extend(workers)
    wait_until(lambda: counts(dsn) == {"completed": 2000}, 600, interval=0.5,
               what="2000 jobs completed")
    check_results(dsn, dict(zip(ids, ([t] for t in texts))))
    with connect(dsn) as conn:
        by_worker = conn.execute("SELECT count(DISTINCT worker_id) FROM sluice.jobs").fetchone()[0]
    assert by_worker >= 2  # the work was shared


UNREACHABLE = "postgresql://sluice@127.0.0.1:1/nowhere?connect_timeout=2"
MALFORMED = "postgresql://sluice@[::1/x"


@pytest.mark.parametrize("command", [
    ["worker", "--model", MODEL],
    ["serve", "--model", MODEL, "--port", "0"],
    ["vectorize", "--model", MODEL, "--table", "t", "--text-column", "b", "--target-column", "e"],
    ["migrate"],
])
@pytest.mark.parametrize("url,message", [
    (UNREACHABLE, "could not connect to PostgreSQL"),
    (MALFORMED, "invalid database URL"),
])
def test_bad_database_url_is_one_line_and_nonzero(command, url, message):
    out = sluice(*command, "--database-url", url, timeout=60)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("sluice: error: ") and message in lines[0], lines[0]


@pytest.mark.parametrize("command", [["worker", "--model", MODEL],
                                     ["serve", "--model", MODEL, "--port", "0"]])
def test_old_schema_is_refused(pg_cluster, pg_dsn, command):
    with connect(pg_dsn) as conn:
        conn.execute("DELETE FROM sluice.schema_migrations WHERE version > 1")
    out = sluice(*command, "--database-url", pg_dsn, timeout=60)
    assert out.returncode == 1
    assert "run `sluice migrate`" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_sigterm_finishes_the_batch(completion_audit, processes):
    dsn = completion_audit
    texts = [f"graceful {i} " + "word " * 150 for i in range(16)]
    ids = enqueue_sql(dsn, [[t] for t in texts])
    worker = Worker(dsn, "--batch-jobs", "16")
    wait_until(lambda: counts(dsn).get("processing", 0) > 0, 60, interval=0.02, what="claim")
    assert worker.stop(timeout=120) == 0
    assert counts(dsn) == {"completed": len(ids)}
    assert "stopped" in worker.logs()
