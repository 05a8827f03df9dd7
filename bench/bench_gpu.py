#!/usr/bin/env python3
"""sluice's CUDA backend against PyTorch (Hugging Face transformers, fp16, SDPA) on one GPU.

One command on the GPU machine does everything, in this order, and saves it under --out:

1. checks: the device, and that every given binary loads (`ldd` finds its libraries, and the
   bench starts and prints its usage);
2. the CUDA test binaries given with --tests (op tests, backend test), each to its own log;
3. for each model, a random-weight model directory written by tools/make_random_model.py at
   the real configuration (fp16), timed by sluice's gpu_encoder_bench (with --profile: the GPU
   time of each kind of op too) and by transformers' AutoModel on the same weights and shapes;
4. one table: sluice vs PyTorch per (model, batch, length), TFLOP/s, batch-1 latency, and the
   per-op breakdown of the largest batches.

Both sides are timed the same way: median wall time of one call end to end (token ids from host
memory to L2-normalised mean-pooled vectors in host memory) after warm-up calls.

Usage: bench_gpu.py --bench BIN [--tests BIN,BIN] [--out DIR] [--models minilm-l6,bert-base,...]
                    [--seqs 1,32,256] [--lens 32,128,512] [--seconds 1.0] [--profile]
                    [--make-model tools/make_random_model.py] [--tokenizer-from DIR]
                    [--bench-args "--residual-in-gemm 0"] [--variants "fp16=;fp8=--fp8 1"]
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = 30522
MODELS = ("minilm-l6", "bert-base", "bert-large")


def encoder_params(config):
    """Parameters of the encoder layers (what the FLOP count multiplies)."""
    h, inter = config["hidden_size"], config["intermediate_size"]
    per_layer = 4 * h * h + 4 * h + 2 * h * inter + inter + h + 4 * h
    return config["num_hidden_layers"] * per_layer


def flops(config, seqs, length):
    per_seq = (2 * encoder_params(config) * length +
               4 * config["num_hidden_layers"] * length ** 2 * config["hidden_size"])
    return seqs * per_seq


def sh(cmd, log, timeout=None):
    """Runs `cmd`, appends its output to `log`; returns (returncode, stdout, stderr)."""
    log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
    log.flush()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        log.write(out + f"\n(timed out after {timeout} s)\n")
        return 124, out, ""
    log.write(p.stdout + p.stderr)
    log.flush()
    return p.returncode, p.stdout, p.stderr


def checks(args, log):
    lines = []
    rc, out, _ = sh(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,power.limit",
                     "--format=csv,noheader"], log)
    lines.append(f"device: {out.strip() if rc == 0 else 'nvidia-smi failed'}")
    binaries = [args.bench] + [t for t in args.tests.split(",") if t]
    for b in binaries:
        rc, out, _ = sh(["ldd", b], log)
        missing = [l.strip() for l in out.splitlines() if "not found" in l]
        lines.append(f"ldd {os.path.basename(b)}: {'ok' if rc == 0 and not missing else missing}")
    rc, _, err = sh([args.bench], log)
    lines.append(f"gpu_encoder_bench starts: {'ok' if rc == 2 and 'usage' in err else rc}")
    return lines


def run_tests(args, log):
    lines = []
    for t in [t for t in args.tests.split(",") if t]:
        name = os.path.basename(t)
        with open(os.path.join(args.out, f"{name}.log"), "w") as tlog:
            t0 = time.perf_counter()
            rc, out, _ = sh([t, "--gtest_brief=1"], tlog, timeout=600)
        summary = [l for l in out.splitlines() if l.startswith(("[  PASSED", "[  FAILED",
                                                                "[  SKIPPED", "[=========="))]
        lines.append(f"{name}: rc {rc}, {time.perf_counter() - t0:.0f} s; " + "; ".join(summary))
        sys.stderr.write(lines[-1] + "\n")
    return lines


def write_model(args, name, log):
    out = os.path.join(args.model_root, name)
    cmd = [sys.executable, args.make_model, "--arch", name, "--dtype", "f16", "--out", out]
    if args.tokenizer_from:
        cmd += ["--tokenizer-from", args.tokenizer_from]
    rc, _, err = sh(cmd, log)
    if rc != 0:
        raise SystemExit(f"make_random_model failed for {name}: {err}")
    with open(os.path.join(out, "config.json")) as f:
        return out, json.load(f)


def run_sluice(args, model_dir, log, variant_args=""):
    cmd = [args.bench, "--model", model_dir, "--seqs", args.seqs, "--lens", args.lens,
           "--seconds", str(args.seconds), "--profile", "1" if args.profile else "0"]
    cmd += shlex.split(args.bench_args) + shlex.split(variant_args)
    rc, out, err = sh(cmd, log, timeout=900)
    sys.stderr.write(err)
    if rc != 0:
        raise SystemExit(f"gpu_encoder_bench failed ({rc}): {err}")
    rows, profiles = {}, {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            key = (r["seqs"], r["len"])
            if "profile" in r:
                profiles[key] = r["ops"]
            elif "gemm" not in r:
                rows[key] = r
    return rows, profiles


def run_torch(model_dir, args, log):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, dtype=torch.float16,
                                      attn_implementation="sdpa").cuda().eval()
    rows = {}
    gen = torch.Generator().manual_seed(1234)
    for length in map(int, args.lens.split(",")):
        for seqs in map(int, args.seqs.split(",")):
            ids = [torch.randint(0, VOCAB, (seqs, length), generator=gen) for _ in range(2)]
            mask = torch.ones(seqs, length, dtype=torch.int64)

            def call(x):
                with torch.inference_mode():
                    x_d = x.cuda(non_blocking=False)
                    m_d = mask.cuda()
                    hidden = model(input_ids=x_d, attention_mask=m_d).last_hidden_state
                    m = m_d.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * m).sum(1).float() / m.sum(1).float()
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                    return pooled.cpu()

            estimate = 0.0
            for r in range(3):
                t0 = time.perf_counter()
                call(ids[r % 2])
                torch.cuda.synchronize()
                estimate = (time.perf_counter() - t0) * 1e3
            reps = int(min(200, max(5, args.seconds * 1e3 / max(estimate, 1e-3))))
            wall, gpu = [], []
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            for r in range(reps):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                start.record()
                call(ids[r % 2])
                stop.record()
                torch.cuda.synchronize()
                wall.append((time.perf_counter() - t0) * 1e3)
                gpu.append(start.elapsed_time(stop))
            rows[(seqs, length)] = dict(wall_ms=statistics.median(wall),
                                        gpu_ms=statistics.median(gpu), reps=reps)
            log.write(json.dumps(dict(torch=1, seqs=seqs, len=length,
                                      **rows[(seqs, length)])) + "\n")
    del model
    torch.cuda.empty_cache()
    return rows


def profile_lines(name, config, key, ops):
    seqs, length = key
    tokens = seqs * length
    h, inter, layers = (config["hidden_size"], config["intermediate_size"],
                        config["num_hidden_layers"])
    gemm_flop = {"qkv_gemm": 2 * tokens * h * 3 * h, "attn_out_gemm": 2 * tokens * h * h,
                 "ffn_in_gemm": 2 * tokens * h * inter, "ffn_out_gemm": 2 * tokens * inter * h,
                 "attention": 4 * seqs * length ** 2 * h}
    act = tokens * h * 2  # bytes of one [tokens, hidden] fp16 tensor
    ln_bytes = {"attn_layernorm": 3 * act, "ffn_layernorm": 3 * act}
    total = sum(op["ms"] for op in ops)
    parts = []
    for op in ops:
        per = op["ms"] / max(op["calls"], 1)
        rate = ""
        if op["op"] in gemm_flop:
            rate = f", {gemm_flop[op['op']] / (per * 1e-3) / 1e12:.0f} TFLOP/s"
        elif op["op"] in ln_bytes:
            rate = f", {ln_bytes[op['op']] / (per * 1e-3) / 1e12:.2f} TB/s"
        parts.append(f"| {name} | {seqs} x {length} | {op['op']} | {op['calls']} | "
                     f"{op['ms']:.3f} | {100 * op['ms'] / total:.1f}%{rate} |")
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="path to gpu_encoder_bench")
    parser.add_argument("--tests", default="", help="comma-separated CUDA test binaries to run")
    parser.add_argument("--out", default=os.environ.get("OUT", "bench_out"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seqs", default="1,32,256")
    parser.add_argument("--lens", default="32,128,512")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per shape")
    parser.add_argument("--profile", action="store_true", help="per-op GPU time breakdown")
    parser.add_argument("--no-torch", action="store_true", help="time sluice only")
    parser.add_argument("--model-root", default="/tmp/sluice_bench_models")
    parser.add_argument("--make-model", default=os.path.join(REPO_ROOT, "tools",
                                                             "make_random_model.py"))
    parser.add_argument("--tokenizer-from", default="",
                        help="BERT tokenizer files for the model directories")
    parser.add_argument("--bench-args", default="", help="extra gpu_encoder_bench flags")
    parser.add_argument("--variants", default="fp16=",
                        help="sluice configurations to time against the one PyTorch run, as "
                             "NAME=FLAGS;NAME=FLAGS (e.g. \"fp16=;fp8=--fp8 1\")")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "bench_gpu.log"), "w")
    header = [f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; command: "
              + " ".join(shlex.quote(a) for a in sys.argv)]
    header += checks(args, log)
    header += run_tests(args, log)
    torch_version = ""
    if not args.no_torch:
        import torch
        torch_version = f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}"
        header.append(torch_version)
    for line in header:
        sys.stderr.write(line + "\n")

    variants = [v.split("=", 1) for v in args.variants.split(";") if v]
    table = ["| model | sluice | batch x len | sluice seq/s | PyTorch seq/s | ratio | "
             "sluice TFLOP/s | sluice ms | PyTorch ms | sluice GPU ms | PyTorch GPU ms | "
             "sluice pipelined seq/s |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    breakdown = ["| model | sluice | batch x len | op | calls | ms | share, rate |",
                 "| --- | --- | --- | --- | ---: | ---: | --- |"]
    for name in args.models.split(","):
        t0 = time.perf_counter()
        model_dir, config = write_model(args, name, log)
        sys.stderr.write(f"{name}: model written in {time.perf_counter() - t0:.1f} s\n")
        results = [(v, *run_sluice(args, model_dir, log, flags)) for v, flags in variants]
        theirs = {} if args.no_torch else run_torch(model_dir, args, log)
        for variant, ours, profiles in results:
            for key in sorted(ours, key=lambda k: (k[1], k[0])):
                seqs, length = key
                o = ours[key]
                t = theirs.get(key, dict(wall_ms=float("nan"), gpu_ms=float("nan")))
                tflops = flops(config, seqs, length) / (o["wall_ms"] * 1e-3) / 1e12
                table.append(
                    f"| {name} | {variant} | {seqs} x {length} | {seqs / o['wall_ms'] * 1e3:.0f} | "
                    f"{seqs / t['wall_ms'] * 1e3:.0f} | {t['wall_ms'] / o['wall_ms']:.2f} | "
                    f"{tflops:.0f} | {o['wall_ms']:.3f} | {t['wall_ms']:.3f} | "
                    f"{o['gpu_ms']:.3f} | {t['gpu_ms']:.3f} | "
                    f"{seqs / o['pipelined_ms'] * 1e3:.0f} |")
            max_seqs = max(map(int, args.seqs.split(",")))
            for key in sorted(profiles, key=lambda k: (k[1], k[0])):
                if key[0] == max_seqs:
                    breakdown += profile_lines(f"{name} | {variant}", config, key,
                                               profiles[key])
        log.flush()
    text = "\n".join(header + ["", *table, "", *breakdown])
    print(text)
    log.write(text + "\n")
    with open(os.path.join(args.out, "bench_gpu_table.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
