#!/usr/bin/env python3
"""Computes the reference vectors for tests/fixtures/minilm/sentences.txt with
sentence-transformers itself (fp32) and writes tests/fixtures/minilm/reference.npy.

Needs sentence-transformers + torch (any machine; CPU is fine):
    python tools/make_reference.py --model models/all-MiniLM-L6-v2
"""
import argparse
import pathlib

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/minilm"


def read_sentences(path: pathlib.Path) -> list[str]:
    # Split on "\n" only: the corpus holds characters str.splitlines() would also split on.
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="local model directory")
    args = parser.parse_args()
    torch.manual_seed(0)
    sentences = read_sentences(FIXTURE / "sentences.txt")
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    # One at a time: no padding can touch the reference.
    vectors = np.stack([
        model.encode([s], batch_size=1, convert_to_numpy=True, normalize_embeddings=False)[0]
        for s in sentences
    ]).astype(np.float32)
    np.save(FIXTURE / "reference.npy", vectors)
    print(f"{vectors.shape} -> {FIXTURE / 'reference.npy'} "
          f"(sentence-transformers, torch {torch.__version__}, max_seq_length "
          f"{model.max_seq_length})")


if __name__ == "__main__":
    main()
