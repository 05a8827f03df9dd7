#!/usr/bin/env python3
"""Side-by-side CPU throughput of sluice's CPU backend and ONNX Runtime on all-MiniLM-L6-v2.

Exports the model to ONNX once (transformers AutoModel + mean pooling + L2 normalisation, fp32,
dynamic batch and sequence axes; cached under build/), runs build/bench/cpu_encoder_bench and
ONNX Runtime with the same number of threads at the same shapes in one run, and prints one table.

  /tmp/refenv/bin/python bench/bench_cpu.py [--threads 2] [--seconds 2]
"""
import argparse
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHAPES = [(16, 1), (16, 32), (128, 1), (128, 32), (512, 1), (512, 32)]


def export_onnx(model_dir: pathlib.Path, onnx_path: pathlib.Path) -> None:
    import torch
    from transformers import AutoModel

    class Embedder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    model = AutoModel.from_pretrained(str(model_dir), torch_dtype=torch.float32).eval()
    ids = torch.ones(2, 8, dtype=torch.int64)
    axes = {0: "batch", 1: "seq"}
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(Embedder(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                          str(onnx_path), input_names=["input_ids", "attention_mask",
                                                       "token_type_ids"],
                          output_names=["embedding"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "token_type_ids": axes, "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)


def ort_session(onnx_path: pathlib.Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def bench_ort(sess, seq: int, batch: int, seconds: float) -> tuple:
    import numpy as np

    rng = np.random.default_rng(seq * 1000 + batch)
    ids = rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids)}
    for _ in range(2):
        sess.run(None, feed)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    median = statistics.median(times)
    return (batch * 1e3 / median, median, times[min(len(times) - 1, len(times) * 9 // 10)])


def bench_sluice(binary: pathlib.Path, model: str, threads: int, seq: int, batch: int,
                 seconds: float) -> tuple:
    out = subprocess.run([str(binary), "--model", model, "--threads", str(threads),
                          "--seconds", str(seconds),
                          "--csv", "--seq", str(seq), "--batch", str(batch)], check=True,
                         capture_output=True, text=True).stdout
    _, _, sps, median, p90 = out.strip().splitlines()[-1].split(",")
    return (float(sps), float(median), float(p90))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--model", default=str(ROOT / "models/all-MiniLM-L6-v2"))
    parser.add_argument("--bench", default=str(ROOT / "build/bench/cpu_encoder_bench"))
    args = parser.parse_args()

    onnx_path = ROOT / "build/onnx/all-MiniLM-L6-v2.onnx"
    if not onnx_path.exists():
        print(f"exporting {onnx_path} ...", file=sys.stderr)
        export_onnx(pathlib.Path(args.model), onnx_path)
    # Shape by shape, alternating, so that both see the same machine load.
    sess = ort_session(onnx_path, args.threads)
    sluice, ort_results = {}, {}
    for seq, batch in SHAPES:
        sluice[(seq, batch)] = bench_sluice(pathlib.Path(args.bench), args.model, args.threads, seq, batch,
                                            args.seconds)
        ort_results[(seq, batch)] = bench_ort(sess, seq, batch, args.seconds)

    print(f"all-MiniLM-L6-v2, fp32, {args.threads} threads, mean pooling + L2 normalise")
    print(f"{'seq':>4} {'batch':>5} | {'sluice sent/s':>13} {'med ms':>8} {'p90 ms':>8} | "
          f"{'ORT sent/s':>10} {'med ms':>8} {'p90 ms':>8} | {'sluice/ORT':>10}")
    for shape in SHAPES:
        s, o = sluice[shape], ort_results[shape]
        print(f"{shape[0]:>4} {shape[1]:>5} | {s[0]:>13.1f} {s[1]:>8.2f} {s[2]:>8.2f} | "
              f"{o[0]:>10.1f} {o[1]:>8.2f} {o[2]:>8.2f} | {s[0] / o[0]:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
