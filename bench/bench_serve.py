#!/usr/bin/env python3
"""End-to-end throughput and latency of `sluice serve` on the real all-MiniLM-L6-v2 (CPU),
driven by build/sluice-loadgen over loopback, in one run:

  (a) cache hits: the same short text every time. A closed loop finds the maximum throughput,
      then open loops at fixed rates near it report the latency percentiles (intended-time
      latency, so server stalls are charged to every request due during them).
  (b) cache misses: a unique short text per request, with dynamic batching on (the defaults)
      and off (--max-batch-requests 1), each first in a closed loop, then in open loops at the
      same rates, up to and past saturation.

Prints one table per part with the 1-minute load average beside each row (the machine is
shared). Needs build/sluice and build/sluice-loadgen (Release) and models/all-MiniLM-L6-v2.

  python3 bench/bench_serve.py [--seconds 5] [--warmup 1] [--io-threads 2[,1]]

With several --io-threads values, part (a) runs once per value; part (b) uses the first.
"""
import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLUICE = ROOT / "build" / "sluice"
LOADGEN = ROOT / "build" / "sluice-loadgen"
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
TEXT = "The quick brown fox jumps over the lazy dog."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """build/sluice serve on a free loopback port, ready on return."""

    def __init__(self, io_threads: int, extra: list[str]):
        self.port = free_port()
        self.args = [str(SLUICE), "--log-level", "warn", "serve", "--model", str(MODEL),
                     "--host", "127.0.0.1", "--port", str(self.port),
                     "--io-threads", str(io_threads), "--max-concurrent-requests", "4096",
                     *extra]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                sys.exit("sluice serve exited: " + self.proc.stderr.read().decode())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit("sluice serve did not become ready")
            time.sleep(0.05)

    def url(self) -> str:
        return f"127.0.0.1:{self.port}/v1/embeddings"

    def command(self) -> str:
        return " ".join(str(a).replace(str(ROOT) + "/", "") for a in self.args)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def loadgen(url: str, args: list[str], seconds: float, warmup: float, threads: int = 1) -> dict:
    cmd = [str(LOADGEN), "--url", url, "--duration", str(seconds), "--warmup", str(warmup),
           "--threads", str(threads), "--json", *args]
    out = subprocess.run(cmd, capture_output=True, timeout=seconds + warmup + 120)
    if out.returncode != 0:
        sys.exit("sluice-loadgen failed: " + out.stderr.decode())
    report = json.loads(out.stdout)
    report["command"] = " ".join(["build/sluice-loadgen", *cmd[1:]])
    report["load1"] = os.getloadavg()[0]
    return report


def scrape_buckets(port: int, route: str = "/v1/embeddings") -> dict:
    """Cumulative counts of sluice_request_duration_seconds for `route`, by upper bound."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("sluice_request_duration_seconds_bucket{") and \
                f'route="{route}"' in line:
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def server_p99_ms(before: dict, after: dict) -> str:
    """Upper bound of the bucket holding the server-side 99th percentile between two scrapes."""
    bounds = sorted(after)
    total = after[float("inf")] - before.get(float("inf"), 0)
    if total <= 0:
        return "-"
    for b in bounds:
        if after[b] - before.get(b, 0) >= 0.99 * total:
            return "<= %g" % (b * 1e3)
    return "-"


def errors(r: dict) -> str:
    bad = {k: v for k, v in r["status"].items() if k != "200"}
    bad.update(r["errors"])
    return ",".join(f"{k}:{v}" for k, v in sorted(bad.items())) or "-"


def row(label: str, r: dict) -> str:
    lat = r["latency_ms"]
    offered = "max" if r["offered_rps"] == 0 else f"{r['offered_rps']:.0f}"
    return (f"| {label} | {offered} | {r['achieved_rps']:.0f} | {lat['p50']:.3f} | "
            f"{lat['p90']:.3f} | {lat['p99']:.3f} | {lat['p99.9']:.3f} | {errors(r)} | "
            f"{r['load1']:.2f} |")


HEADER = ("| run | offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | "
          "non-200 | load1 |\n|---|---:|---:|---:|---:|---:|---:|---|---:|")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1, help="unmeasured seconds before each")
    p.add_argument("--io-threads", default="2",
                   help="server I/O threads; a list runs part (a) once per value")
    p.add_argument("--hit-rates", default="", help="open-loop rates for part (a), comma-"
                   "separated (default: 50%%, 75%% and 90%% of the closed-loop maximum)")
    p.add_argument("--miss-rates", default="", help="open-loop rates for part (b) (default: "
                   "from the closed-loop maxima, up to past the batched one)")
    p.add_argument("--commands", action="store_true", help="print every command run")
    p.add_argument("--hits-only", action="store_true", help="run part (a) only")
    a = p.parse_args()
    io_threads = [int(x) for x in a.io_threads.split(",")]
    for path in (SLUICE, LOADGEN, MODEL):
        if not path.exists():
            sys.exit(f"{path} is missing")

    runs = []  # (part, label, report)
    print(f"# sluice serve benchmark: all-MiniLM-L6-v2 on the CPU, {os.cpu_count()} cores, "
          f"{io_threads[0]} I/O threads, loadgen 1 thread, {a.seconds:g} s per run after "
          f"{a.warmup:g} s warm-up")

    # (a) cache hits.
    print(f"\n## (a) cache hits: one fixed text ({TEXT!r}), float output\n")
    for threads in io_threads:
        server = Server(threads, [])
        print(f"server: {server.command()}")
        try:
            hit_args = ["--text", TEXT]
            before = scrape_buckets(server.port)
            closed = loadgen(server.url(), ["--closed", "--connections", "16", *hit_args],
                             a.seconds, a.warmup)
            closed["server_p99"] = server_p99_ms(before, scrape_buckets(server.port))
            runs.append(("a", f"{threads} I/O, closed loop, 16 conn", closed))
            peak = closed["achieved_rps"]
            rates = ([float(x) for x in a.hit_rates.split(",")] if a.hit_rates else
                     [round(peak * f, -3) for f in (0.5, 0.75, 0.9)])
            for rate in rates:
                before = scrape_buckets(server.port)
                r = loadgen(server.url(),
                            ["--rate", f"{rate:g}", "--connections", "64", *hit_args],
                            a.seconds, a.warmup)
                r["server_p99"] = server_p99_ms(before, scrape_buckets(server.port))
                runs.append(("a", f"{threads} I/O, open loop, 64 conn", r))
        finally:
            server.stop()
    print()
    head, rule = HEADER.split("\n")
    print(f"{head} server p99 ms |\n{rule}---|")
    for part, label, r in runs:
        if part == "a":
            print(row(label, r) + f" {r['server_p99']} |")
    if a.hits_only:
        return

    # (b) cache misses, batching on and off.
    configs = [("batching on", []), ("batching off", ["--max-batch-requests", "1"])]
    servers = {}
    miss_args = ["--unique", "--text", "short text"]
    peaks = {}
    for name, extra in configs:
        server = Server(io_threads[0], extra)
        servers[name] = server.command()
        try:
            r = loadgen(server.url(), ["--closed", "--connections", "64", *miss_args],
                        a.seconds, a.warmup)
            runs.append(("b", f"{name}, closed loop, 64 conn", r))
            peaks[name] = r["achieved_rps"]
        finally:
            server.stop()
    if a.miss_rates:
        miss_rates = [float(x) for x in a.miss_rates.split(",")]
    else:
        off, on = peaks["batching off"], peaks["batching on"]
        miss_rates = sorted({round(x, -1) for x in (0.5 * off, 0.9 * off, 1.5 * off,
                                                    0.5 * on, 0.8 * on, 1.1 * on)})
    for name, extra in configs:
        server = Server(io_threads[0], extra)
        try:
            for rate in miss_rates:
                r = loadgen(server.url(), ["--rate", f"{rate:g}", "--connections", "256",
                                           "--timeout", "5", *miss_args], a.seconds, a.warmup)
                runs.append(("b", f"{name}, open loop, 256 conn", r))
        finally:
            server.stop()
    print("\n## (b) cache misses: a unique short text per request, float output\n")
    for name, command in servers.items():
        print(f"server ({name}): {command}")
    print()
    print(HEADER)
    for part, label, r in runs:
        if part == "b":
            print(row(label, r))
    print("\nLatency runs from each request's intended send time (open loop) or its send time "
          "(closed loop); percentiles over 200 responses. non-200: statuses and client-side "
          "errors (unsent = still queued in the client when the window ended).")
    if a.commands:
        print()
        for _, label, r in runs:
            print(f"{label}: {r['command']}")


if __name__ == "__main__":
    main()
