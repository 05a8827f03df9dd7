"""`sluice vectorize` on a real table: results, resumption after kill -9, progress output."""
import os
import pty
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest_pg import (BINARY, MODEL, connect, pg_cluster, pg_dsn,  # noqa: F401
                         reference_vectors, sluice, wait_until)


def make_docs(dsn, n, words=8):
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE docs (id bigint PRIMARY KEY, body text, embedding real[])")
        conn.execute("INSERT INTO docs SELECT i, 'doc ' || i || ' ' || repeat('word ', %s) "
                     "FROM generate_series(1, %s) i", (words, n))


def vectorize_args(dsn, *extra, **override):
    flags = {"table": "docs", "id_column": "id", "text_column": "body",
             "target_column": "embedding", **override}
    args = ["vectorize", "--database-url", dsn, "--model", MODEL, "--threads", "1"]
    for k, v in flags.items():
        args += ["--" + k.replace("_", "-"), v]
    return args + list(extra)


def check_table(dsn):
    with connect(dsn) as conn:
        rows = conn.execute("SELECT body, embedding FROM docs ORDER BY id").fetchall()
    assert all(r[1] is not None for r in rows)
    got = np.array([r[1] for r in rows], dtype=np.float32)
    np.testing.assert_allclose(got, reference_vectors([r[0] for r in rows]), atol=1e-6)


def test_vectorize_fills_real_array_like_sluice_embed(pg_dsn):
    make_docs(pg_dsn, 300)
    out = sluice(*vectorize_args(pg_dsn, "--batch-size", "64"), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "300 rows of docs embedded into embedding (real[])" in out.stdout
    # Not a terminal: plain progress lines, the last one complete.
    assert out.stderr.strip().splitlines()[-1].startswith("vectorize: 300/300 rows (100%)")
    check_table(pg_dsn)
    again = sluice(*vectorize_args(pg_dsn), timeout=300)
    assert again.returncode == 0 and "0 rows" in again.stdout


def test_vectorize_resumes_after_kill9(pg_dsn):
    make_docs(pg_dsn, 1500, words=30)
    proc = subprocess.Popen([str(BINARY), *vectorize_args(pg_dsn, "--batch-size", "16")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with connect(pg_dsn) as conn:
        def some_done():
            return conn.execute("SELECT count(embedding) FROM docs").fetchone()[0] >= 64
        wait_until(some_done, 120, interval=0.05, what="first batches")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = conn.execute("SELECT count(embedding) FROM docs").fetchone()[0]
    assert 0 < done < 1500
    out = sluice(*vectorize_args(pg_dsn, "--batch-size", "64"), timeout=600)
    assert out.returncode == 0, out.stderr
    assert f"{1500 - done} rows" in out.stdout, out.stdout
    check_table(pg_dsn)


def test_progress_bar_on_a_terminal(pg_dsn):
    make_docs(pg_dsn, 40)
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(BINARY), *vectorize_args(pg_dsn, "--batch-size", "8")],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=300)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.returncode == 0
    tty = b"".join(chunks).decode()
    assert "\r[" in tty and "40/40 rows 100%" in tty, tty


@pytest.mark.parametrize("override,message", [
    ({"table": "nope"}, "table nope does not exist"),
    ({"text_column": "nope"}, 'column "nope" does not exist in table docs'),
    ({"target_column": "body"}, "has type text; the target must be real[] or pgvector"),
])
def test_bad_table_or_column_is_a_clear_error(pg_dsn, override, message):
    make_docs(pg_dsn, 1)
    out = sluice(*vectorize_args(pg_dsn, **override), timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("sluice: error: ") and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
