#!/usr/bin/env python3
"""PostgreSQL queue and cache tier, measured with the real binaries.

  .venv/bin/python bench/bench_pg.py [--jobs 2000] [--workers 1,2,4] [--lookups 500]

Starts a throwaway cluster (scripts/pg-test-cluster.sh) unless --database-url is given (it
must allow CREATE DATABASE), then prints three tables:
  1. pg_queue_bench (queue only, no model): claim + complete per batch, if it is built;
  2. jobs/s of real `sluice worker` processes (MiniLM, CPU, one backend thread each, short
     texts) with 1, 2, 4 workers, against `sluice embed` of the same texts on one thread; the
     difference per claimed batch is what the queue costs a worker end to end;
  3. /v1/embeddings latency for an in-process cache hit, a PostgreSQL-tier hit and a miss.
"""
import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg
import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARY = ROOT / "build" / "sluice"
QUEUE_BENCH = ROOT / "build" / "bench" / "pg_queue_bench"
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"


def new_database(admin_dsn: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    subprocess.run([BINARY, "migrate", "--database-url", dsn], check=True, capture_output=True)
    return dsn


def texts(n: int, tag: str) -> list[str]:
    return [f"{tag} sentence {i} about topic {i % 41} in colour {i % 13}" for i in range(n)]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def bench_queue_only(dsn: str):
    if not QUEUE_BENCH.exists():
        print(f"(skipped: {QUEUE_BENCH} not built)\n")
        return
    out = subprocess.run([QUEUE_BENCH, "--database-url", dsn], capture_output=True, text=True,
                         timeout=600)
    print(out.stdout.strip() or out.stderr.strip())
    print()


def bench_workers(admin_dsn: str, jobs: int, batch_jobs: int, counts: list[int]):
    work = texts(jobs, "worker")

    def embed_seconds(lines):
        start = time.monotonic()
        subprocess.run([BINARY, "embed", "--model", MODEL, "--threads", "1", "--batch-size",
                        str(batch_jobs)], input="\n".join(lines) + "\n", capture_output=True,
                       text=True, check=True)
        return time.monotonic() - start

    # Compute only: the whole run minus a one-line run (process start and model load).
    embed_s = embed_seconds(work) - embed_seconds(work[:1])
    batches = (jobs + batch_jobs - 1) // batch_jobs
    print(f"| workers | jobs | wall s | jobs/s | vs 1 worker | overhead per batch (1 worker) |")
    print(f"| --- | --- | --- | --- | --- | --- |")
    print(f"| `sluice embed` (1 thread, compute only) | {jobs} | {embed_s:.2f} | "
          f"{jobs / embed_s:.0f} | | |")
    base = None
    for n in counts:
        dsn = new_database(admin_dsn)
        procs = []
        logs = []
        for _ in range(n):
            log = tempfile.TemporaryFile(mode="w+")
            logs.append(log)
            procs.append(subprocess.Popen(
                [BINARY, "worker", "--model", MODEL, "--database-url", dsn, "--backend-threads",
                 "1", "--batch-jobs", str(batch_jobs)],
                stdout=log, stderr=subprocess.STDOUT))
        with psycopg.connect(dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                               "'sluice worker' AND query ILIKE 'LISTEN%'").fetchone()[0] < n:
                if time.monotonic() > deadline:
                    sys.exit("workers did not start")
                time.sleep(0.05)
            start = time.monotonic()
            conn.execute("INSERT INTO sluice.jobs (model, input) "
                         "SELECT %s, jsonb_build_array(t) FROM unnest(%s::text[]) t",
                         (MODEL_NAME, work))
            while conn.execute("SELECT count(*) FROM sluice.jobs WHERE status = 'completed'"
                               ).fetchone()[0] < jobs:
                time.sleep(0.01)
            wall = time.monotonic() - start
        for p in procs:
            p.terminate()
            p.wait()
        rate = jobs / wall
        base = base or rate
        overhead = f"{(wall - embed_s) / batches * 1000:.2f} ms" if n == 1 else ""
        print(f"| {n} | {jobs} | {wall:.2f} | {rate:.0f} | {rate / base:.2f}x | {overhead} |")
    print()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dsn: str):
    port = free_port()
    proc = subprocess.Popen([BINARY, "serve", "--model", MODEL, "--host", "127.0.0.1", "--port",
                             str(port), "--database-url", dsn, "--backend-threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            sys.exit("server did not start")
        time.sleep(0.1)


HUNG = [0]


def timed_requests(url: str, items: list[str]) -> list[float]:
    """Sequential single-input requests; a request that gets no answer within 5 s is retried
    (and counted in HUNG) so that one lost answer does not end the run."""
    session = requests.Session()
    out = []
    for t in items:
        for _ in range(3):
            start = time.perf_counter()
            try:
                r = session.post(url + "/v1/embeddings", json={"input": [t]}, timeout=5)
            except requests.Timeout:
                HUNG[0] += 1
                session = requests.Session()
                continue
            out.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text
            break
    return out


def bench_cache(admin_dsn: str, lookups: int):
    dsn = new_database(admin_dsn)
    keys = texts(lookups, "cache")
    a, url_a = start_server(dsn)
    misses = timed_requests(url_a, keys)           # computed, then written to both tiers
    time.sleep(1.0)                                # the writer flushes every 250 ms
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM sluice.embedding_cache").fetchone()[0]
    l1 = timed_requests(url_a, keys)               # same replica: in-process hits
    b, url_b = start_server(dsn)
    timed_requests(url_b, ["warm up the connection"])
    l2 = timed_requests(url_b, keys)               # fresh replica: PostgreSQL-tier hits
    a.terminate(), b.terminate()
    a.wait(), b.wait()
    print(f"{stored}/{lookups} entries in sluice.embedding_cache; one input per request, "
          f"keep-alive, sequential")
    if HUNG[0]:
        print(f"({HUNG[0]} requests got no answer within 5 s and were retried)")
    print("| lookup | P50 ms | P99 ms | mean ms |")
    print("| --- | --- | --- | --- |")
    for name, v in (("in-process hit", l1), ("PostgreSQL-tier hit", l2), ("miss (compute)", misses)):
        print(f"| {name} | {percentile(v, 50):.3f} | {percentile(v, 99):.3f} | "
              f"{statistics.mean(v):.3f} |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="admin DSN (default: a throwaway cluster)")
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--batch-jobs", type=int, default=64)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--lookups", type=int, default=500)
    args = ap.parse_args()
    cluster_dir = None
    admin = args.database_url
    if admin is None:
        cluster_dir = tempfile.mkdtemp(prefix="sluice-bench-pg.")
        admin = subprocess.run([ROOT / "scripts" / "pg-test-cluster.sh", "start", cluster_dir],
                               check=True, capture_output=True, text=True).stdout.strip()
    try:
        print(f"## machine: {os.cpu_count()} CPUs; PostgreSQL {admin.split('@')[-1]}\n")
        print("### queue only (pg_queue_bench)\n")
        bench_queue_only(new_database(admin))
        print(f"### workers (batch of {args.batch_jobs} jobs per claim)\n")
        bench_workers(admin, args.jobs, args.batch_jobs,
                      [int(x) for x in args.workers.split(",")])
        print("### cache tier\n")
        bench_cache(admin, args.lookups)
    finally:
        if cluster_dir:
            subprocess.run([ROOT / "scripts" / "pg-test-cluster.sh", "stop", cluster_dir])


if __name__ == "__main__":
    main()
