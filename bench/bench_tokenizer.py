#!/usr/bin/env python3
"""Tokenizer throughput, single thread: sluice (bench/tokenizer_bench) against Hugging Face
`tokenizers` (encode_batch with RAYON_NUM_THREADS=1, and encode one text at a time) on the same
seeded corpus, in the same run.

    .venv/bin/python bench/bench_tokenizer.py [--model DIR] [--bench build/bench/tokenizer_bench]
"""

import argparse
import json
import os
import pathlib
import random
import subprocess
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool

from tokenizers import Tokenizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at "
         "which but have an they you were her she there been one all we their has would when "
         "database query index vector embedding model server request latency throughput batch "
         "PostgreSQL transformer attention tokenization encoder GPU kernel memory cache worker "
         "naïve café résumé Zürich São Paulo 東京 北京 data-driven state-of-the-art U.S. e.g. "
         "don't it's we're 2024 3.14 $100 50% #1 (see below) [note] user@example.com").split()


def sentence(rng, n_words):
    words = [rng.choice(WORDS) for _ in range(n_words)]
    words[0] = words[0].capitalize()
    text = " ".join(words)
    return text + rng.choice([".", ".", "!", "?", "..."])


def make_corpus(seed=7):
    rng = random.Random(seed)
    short = [sentence(rng, rng.randint(5, 30)) for _ in range(20000)]
    long = [" ".join(sentence(rng, rng.randint(8, 25)) for _ in range(rng.randint(100, 200)))
            for _ in range(200)]
    return {"short": short, "long": long}


def measure_hf(fn, texts, min_seconds):
    fn(texts)  # warm-up
    passes, start = 0, time.perf_counter()
    while True:
        fn(texts)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return passes / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=ROOT / "models" / "all-MiniLM-L6-v2", type=pathlib.Path)
    parser.add_argument("--bench", default=ROOT / "build" / "bench" / "tokenizer_bench",
                        type=pathlib.Path)
    parser.add_argument("--min-seconds", default=2.0, type=float)
    args = parser.parse_args()

    corpora = make_corpus()
    hf = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()

    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for name, texts in corpora.items():
            path = pathlib.Path(tmp) / f"{name}.jsonl"
            path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts),
                            encoding="utf-8")
            specs += ["--corpus", f"{name}={path}"]
        out = subprocess.run([str(args.bench), "--model", str(args.model), "--json",
                              "--min-seconds", str(args.min_seconds), *specs],
                             check=True, capture_output=True, text=True).stdout
    sluice = {r["corpus"]: r for r in map(json.loads, out.splitlines())}

    rows = []
    for name, texts in corpora.items():
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        hf_tokens = sum(len(e.ids) for e in hf.encode_batch(texts))
        assert hf_tokens == sluice[name]["tokens"], "sluice and tokenizers disagree on token count"
        batch = measure_hf(lambda ts: hf.encode_batch(ts), texts, args.min_seconds)
        single = measure_hf(lambda ts: [hf.encode(t) for t in ts], texts, args.min_seconds)
        rows.append((name, "sluice Encode", sluice[name]["texts_per_s"], sluice[name]["mb_per_s"]))
        rows.append((name, "HF encode_batch", batch * len(texts), batch * n_bytes / 1e6))
        rows.append((name, "HF encode", single * len(texts), single * n_bytes / 1e6))
        info = f"{len(texts)} texts, {n_bytes / len(texts):.0f} B/text, {hf_tokens} tokens"
        print(f"{name}: {info}")

    print(f"\n{'corpus':<7} {'tokenizer':<16} {'texts/s':>11} {'MB/s':>8} {'vs HF batch':>12}")
    for name, who, texts_s, mb_s in rows:
        base = next(r[2] for r in rows if r[0] == name and r[1] == "HF encode_batch")
        print(f"{name:<7} {who:<16} {texts_s:>11.0f} {mb_s:>8.2f} {texts_s / base:>11.2f}x")


if __name__ == "__main__":
    main()
