#!/usr/bin/env python3
"""`sluice serve` on GPUs, end to end: single-text requests with unique texts (every one a
cache miss) from build/sluice-loadgen on the same host. For each device setting: a closed loop
for the maximum throughput, then open loops at fixed rates for the latency percentiles, with the
GPUs' busy share sampled by nvidia-smi during each run.

  python3 bench/bench_serve_gpu.py --sluice S --loadgen L --model DIR \\
      [--devices cuda,0,1] [--rates 10000,20000] [--seconds 10]

--devices lists settings separated by ';': "cuda" (one GPU) or GPU lists such as "0,1" / "all".
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import threading

import bench_serve as serve


class GpuSampler:
    """Samples utilization.gpu of every GPU every 100 ms while active."""

    def __init__(self):
        self.samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True)
            if out.returncode == 0:
                self.samples.append([float(v) for v in out.stdout.split()])
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def busy(self) -> str:
        if not self.samples:
            return "n/a"
        per_gpu = zip(*self.samples)
        return "/".join(f"{statistics.mean(g):.0f}%" for g in per_gpu)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sluice", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--devices", default="cuda")
    p.add_argument("--rates", default="10000,20000")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--io-threads", type=int, default=4)
    p.add_argument("--loadgen-threads", type=int, default=4)
    p.add_argument("--connections", type=int, default=512)
    p.add_argument("--inputs", type=int, default=1,
                   help="texts per request (more than 1: a client batch of ~128-token texts)")
    args = p.parse_args()
    load = ["--unique", "--text", serve.TEXT]
    if args.inputs > 1:
        words = " ".join(f"word{i % 50}" for i in range(100))
        body = {"input": [f"%d {words} {k}" for k in range(args.inputs)]}
        path = pathlib.Path("/tmp/sluice-bench-body.json")
        path.write_text(json.dumps(body))
        load = ["--body-file", str(path)]
    serve.SLUICE = pathlib.Path(args.sluice)
    serve.LOADGEN = pathlib.Path(args.loadgen)
    serve.MODEL = pathlib.Path(args.model)

    print("| devices | run | offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | "
          "p99.9 ms | non-200 | load1 | GPU busy | texts/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|")
    for setting in args.devices.split(";"):
        flag = ["--device", setting] if setting.startswith("cuda") else ["--devices", setting]
        server = serve.Server(args.io_threads, [*flag, "--cache-bytes", "0",
                                                "--max-batch-requests", "256",
                                                "--max-queue-delay-us", "1000"])
        print(f"<!-- {server.command()} -->", file=sys.stderr)
        try:
            runs = [("closed loop", ["--closed", "--connections", str(args.connections)])]
            runs += [(f"open loop", ["--rate", r, "--connections", str(args.connections)])
                     for r in args.rates.split(",") if r]
            for label, extra in runs:
                with GpuSampler() as gpu:
                    r = serve.loadgen(server.url(), [*extra, *load], args.seconds, args.warmup,
                                      threads=args.loadgen_threads)
                print(f"| {setting} " + serve.row(label, r) + f" {gpu.busy()} | "
                      f"{r['achieved_rps'] * args.inputs:.0f} |", flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
