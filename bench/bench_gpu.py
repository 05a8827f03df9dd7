#!/usr/bin/env python3
"""sluice's CUDA backend against PyTorch (Hugging Face transformers, fp16, SDPA) on one GPU.

Writes random-weight BERT model directories at real configurations (config.json +
model.safetensors, fp16, BERT initialisation std 0.02), times sluice's gpu_encoder_bench and
transformers' AutoModel on the same weights and shapes in the same run, and prints one table.
Both sides are timed the same way: median wall time of one call end to end (token ids from
host memory to L2-normalised mean-pooled vectors in host memory) after warm-up calls.

Usage: bench_gpu.py --bench BIN [--out DIR] [--models minilm-l6,bert-base,bert-large]
                    [--seqs 1,32,256] [--lens 32,128,512] [--seconds 1.0]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CONFIGS = {
    "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536),
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                       intermediate_size=4096),
}
VOCAB, POSITIONS, TYPES = 30522, 512, 2


def write_model(path, name, seed=0):
    """A BertModel directory with random fp16 weights; returns the non-embedding parameter count."""
    os.makedirs(path, exist_ok=True)
    c = CONFIGS[name]
    config = dict(architectures=["BertModel"], model_type="bert", vocab_size=VOCAB,
                  max_position_embeddings=POSITIONS, type_vocab_size=TYPES, hidden_act="gelu",
                  layer_norm_eps=1e-12, pad_token_id=0, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, initializer_range=0.02,
                  torch_dtype="float16", **c)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    rng = np.random.default_rng(seed)
    h, inter = c["hidden_size"], c["intermediate_size"]
    tensors = {}

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    def layer_norm(prefix):
        tensors[prefix + ".weight"] = np.ones(h, np.float16)
        tensors[prefix + ".bias"] = normal(h)

    tensors["embeddings.word_embeddings.weight"] = normal(VOCAB, h)
    tensors["embeddings.position_embeddings.weight"] = normal(POSITIONS, h)
    tensors["embeddings.token_type_embeddings.weight"] = normal(TYPES, h)
    layer_norm("embeddings.LayerNorm")
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            tensors[p + f"attention.self.{proj}.weight"] = normal(h, h)
            tensors[p + f"attention.self.{proj}.bias"] = normal(h)
        tensors[p + "attention.output.dense.weight"] = normal(h, h)
        tensors[p + "attention.output.dense.bias"] = normal(h)
        layer_norm(p + "attention.output.LayerNorm")
        tensors[p + "intermediate.dense.weight"] = normal(inter, h)
        tensors[p + "intermediate.dense.bias"] = normal(inter)
        tensors[p + "output.dense.weight"] = normal(h, inter)
        tensors[p + "output.dense.bias"] = normal(h)
        layer_norm(p + "output.LayerNorm")
    tensors["pooler.dense.weight"] = normal(h, h)
    tensors["pooler.dense.bias"] = normal(h)

    header, offset = {}, 0
    for key, t in tensors.items():
        header[key] = dict(dtype="F16", shape=list(t.shape), data_offsets=[offset, offset + t.nbytes])
        offset += t.nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(os.path.join(path, "model.safetensors"), "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for t in tensors.values():
            f.write(np.ascontiguousarray(t).tobytes())
    return sum(t.size for k, t in tensors.items()
               if k.startswith("encoder.layer."))


def flops(name, params, seqs, length):
    c = CONFIGS[name]
    per_seq = 2 * params * length + 4 * c["num_hidden_layers"] * length ** 2 * c["hidden_size"]
    return seqs * per_seq


def run_sluice(bench, model_dir, args, log):
    cmd = [bench, "--model", model_dir, "--seqs", args.seqs, "--lens", args.lens,
           "--seconds", str(args.seconds)]
    log.write("$ " + " ".join(cmd) + "\n")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"gpu_encoder_bench failed ({proc.returncode})")
    sys.stderr.write(proc.stderr)
    rows = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            rows[(r["seqs"], r["len"])] = r
    return rows


def run_torch(model_dir, args, log):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, torch_dtype=torch.float16,
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
            log.write(json.dumps(dict(seqs=seqs, len=length, **rows[(seqs, length)])) + "\n")
    del model
    torch.cuda.empty_cache()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="path to gpu_encoder_bench")
    parser.add_argument("--out", default=os.environ.get("OUT", "bench_out"))
    parser.add_argument("--models", default="minilm-l6,bert-base,bert-large")
    parser.add_argument("--seqs", default="1,32,256")
    parser.add_argument("--lens", default="32,128,512")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per shape")
    parser.add_argument("--model-root", default="/tmp/sluice_bench_models")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "bench_gpu.log"), "w")
    import torch
    device = torch.cuda.get_device_name(0)
    header = (f"device: {device}; torch {torch.__version__}; "
              f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    log.write(header + "\n")

    lines = [header, "",
             "| model | batch x len | sluice seq/s | PyTorch seq/s | ratio | sluice TFLOP/s "
             "| sluice ms | PyTorch ms | sluice GPU ms | PyTorch GPU ms | sluice pipelined seq/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in args.models.split(","):
        model_dir = os.path.join(args.model_root, name)
        t0 = time.perf_counter()
        params = write_model(model_dir, name)
        sys.stderr.write(f"{name}: wrote {params / 1e6:.1f}M encoder parameters in "
                         f"{time.perf_counter() - t0:.1f} s\n")
        ours = run_sluice(args.bench, model_dir, args, log)
        theirs = run_torch(model_dir, args, log)
        for key in sorted(ours, key=lambda k: (k[1], k[0])):
            seqs, length = key
            o, t = ours[key], theirs[key]
            tflops = flops(name, params, seqs, length) / (o["wall_ms"] * 1e-3) / 1e12
            lines.append(
                f"| {name} | {seqs} x {length} | {seqs / o['wall_ms'] * 1e3:.0f} | "
                f"{seqs / t['wall_ms'] * 1e3:.0f} | {t['wall_ms'] / o['wall_ms']:.2f} | "
                f"{tflops:.0f} | {o['wall_ms']:.3f} | {t['wall_ms']:.3f} | {o['gpu_ms']:.3f} | "
                f"{t['gpu_ms']:.3f} | {seqs / o['pipelined_ms'] * 1e3:.0f} |")
        log.flush()
    table = "\n".join(lines)
    print(table)
    log.write(table + "\n")
    with open(os.path.join(args.out, "bench_gpu_table.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
