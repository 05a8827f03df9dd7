"""PostgreSQL helpers for the end-to-end tests (test_pg_*.py import the fixtures from here).

A throwaway cluster from scripts/pg-test-cluster.sh is started once per pytest session (as
root the script runs the server as an unprivileged user) and removed at exit. Every test gets a
fresh, migrated database, so tests never see each other's jobs. Processes started here (`sluice
serve`, `sluice worker`) are stopped when their test ends.
"""
import atexit
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import numpy as np
import psycopg
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / "build" / "sluice"
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
CLUSTER_SCRIPT = ROOT / "scripts" / "pg-test-cluster.sh"
LOG_DIR = ROOT / "build" / "e2e-pg-logs"


class PgCluster:
    """One throwaway PostgreSQL server."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sluice-e2e-pg."))
        out = subprocess.run([str(CLUSTER_SCRIPT), "start", str(self.dir)], capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0 or not (self.dir / "dsn").exists():
            pytest.skip(f"no PostgreSQL cluster: {out.stderr.strip()}")
        self.dsn = (self.dir / "dsn").read_text().strip()

    def restart(self):
        subprocess.run([str(CLUSTER_SCRIPT), "restart", str(self.dir)], check=True, timeout=120)

    def pg_ctl(self, *args):
        """Runs pg_ctl on the cluster's data directory (as the server's user)."""
        data = pathlib.Path((self.dir / "datadir").read_text().strip()) / "data"
        pg_bin = os.environ.get("SLUICE_PG_BIN", "/usr/lib/postgresql/15/bin")
        cmd = [f"{pg_bin}/pg_ctl", "-D", str(data), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "sluice-test", "--", *cmd]
        subprocess.run(cmd, check=True, timeout=120, capture_output=True, cwd="/tmp")

    def stop(self):
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(self.dir)], timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)

    def with_database(self, name: str) -> str:
        return self.dsn.rsplit("/", 1)[0] + "/" + name


_session_cluster = None


def session_cluster() -> PgCluster:
    global _session_cluster
    if _session_cluster is None:
        _session_cluster = PgCluster()
        atexit.register(_session_cluster.stop)
    return _session_cluster


def connect(dsn: str):
    return psycopg.connect(dsn, autocommit=True)


def sluice(*args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A long-running sluice subcommand with its log in build/e2e-pg-logs/."""

    def __init__(self, name: str, args: list[str]):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{uuid.uuid4().hex[:8]}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([str(BINARY), *map(str, args)], stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout=60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Worker(Process):
    def __init__(self, dsn: str, *extra: str):
        super().__init__("worker", ["worker", "--model", MODEL, "--database-url", dsn,
                                    "--backend-threads", "1", *extra])


class Server(Process):
    """`sluice serve` on a free port; waits for /ready."""

    def __init__(self, dsn: str | None, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--model", MODEL, "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-threads", "1", *extra]
        if dsn:
            args += ["--database-url", dsn]
        super().__init__("serve", args)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice serve exited with {self.proc.returncode}:\n"
                                   + self.logs())
            try:
                if requests.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sluice serve not ready after 60 s:\n" + self.logs())
            time.sleep(0.1)


def reference_vectors(texts: list[str]) -> np.ndarray:
    """What `sluice embed` writes for `texts` (one per line)."""
    import json
    out = sluice("embed", "--model", MODEL, input="\n".join(texts) + "\n", timeout=600)
    assert out.returncode == 0, out.stderr
    return np.array([json.loads(line)["embedding"] for line in out.stdout.splitlines()],
                    dtype=np.float32)


def job_vectors(result: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(result, dtype="<f4").reshape(-1, dim)


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def pg_cluster() -> PgCluster:
    if not BINARY.exists() or not MODEL.exists():
        pytest.skip("needs build/sluice and the model")
    return session_cluster()


@pytest.fixture
def pg_dsn(pg_cluster) -> str:
    """A fresh database, migrated, dropped after the test."""
    name = "e2e_" + uuid.uuid4().hex[:12]
    with connect(pg_cluster.dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_cluster.with_database(name)
    out = sluice("migrate", "--database-url", dsn)
    assert out.returncode == 0, out.stderr
    yield dsn
    with connect(pg_cluster.dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def processes():
    """Collects the processes a test starts and stops them afterwards."""
    started: list[Process] = []
    yield started
    for p in started:
        p.stop(timeout=30)


@pytest.fixture
def completion_audit(pg_dsn):
    """Counts every transition of a job to 'completed', to prove each happens exactly once."""
    with connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE completion_audit (job_id bigint, attempt int, worker text)")
        conn.execute("""
            CREATE FUNCTION audit_completion() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO completion_audit VALUES (NEW.id, NEW.attempt, NEW.worker_id);
              RETURN NEW;
            END $$""")
        conn.execute("""
            CREATE TRIGGER audit_completion AFTER UPDATE ON sluice.jobs FOR EACH ROW
            WHEN (NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed')
            EXECUTE FUNCTION audit_completion()""")
    return pg_dsn
