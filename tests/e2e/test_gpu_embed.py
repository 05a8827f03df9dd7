"""`sluice embed --device cuda` on the real all-MiniLM-L6-v2 against the sentence-transformers
fp32 reference; skipped where there is no GPU or no CUDA backend.

SLUICE_GPU_MODEL points at the model directory (default models/all-MiniLM-L6-v2; an fp16 copy
made by tools/convert_model_dtype.py gives the same vectors, since the GPU computes in fp16).
fp16 and bf16 are held to cosine >= 0.9995 per sentence. fp8 (E4M3 GEMM operands, 3 mantissa
bits) trades accuracy for speed and is held to the bounds measured for it: mean cosine >= 0.995,
min >= 0.97."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "minilm"


@pytest.fixture(scope="module")
def gpu_model(sluice_bin, request) -> pathlib.Path:
    version = subprocess.run([str(sluice_bin), "--version"], capture_output=True, text=True)
    if "cuda" not in version.stdout:
        pytest.skip("built without the CUDA backend")
    try:
        if subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0:
            pytest.skip("no GPU")
    except OSError:
        pytest.skip("no GPU")
    if "SLUICE_GPU_MODEL" in os.environ:
        return pathlib.Path(os.environ["SLUICE_GPU_MODEL"])
    return request.getfixturevalue("model_dir")


def embed_gpu(sluice_bin, model, lines, *args) -> np.ndarray:
    proc = subprocess.run([str(sluice_bin), "embed", "--model", str(model), "--device", "cuda",
                           *args], input=("\n".join(lines) + "\n").encode(),
                          capture_output=True, timeout=600)
    if b"compute capability" in proc.stderr:
        pytest.skip(proc.stderr.decode().strip())
    assert proc.returncode == 0, proc.stderr.decode()
    return np.array([json.loads(l)["embedding"] for l in proc.stdout.decode().splitlines()],
                    dtype=np.float32)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp8"])
def test_gpu_matches_sentence_transformers(sluice_bin, gpu_model, dtype):
    sentences = (FIXTURE / "sentences.txt").read_text(encoding="utf-8")[:-1].split("\n")
    reference = np.load(FIXTURE / "reference.npy")
    vectors = embed_gpu(sluice_bin, gpu_model, sentences, "--gpu-dtype", dtype)
    cosine = np.sum(vectors * reference, axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    print(f"GPU {dtype} vs sentence-transformers fp32: min cosine {cosine.min():.6f}, "
          f"mean {cosine.mean():.6f}, max abs diff {np.abs(vectors - reference).max():.2e}")
    if dtype == "fp8":
        assert cosine.mean() >= 0.995, cosine.mean()
        assert cosine.min() >= 0.97, f"sentence {int(np.argmin(cosine))}: {cosine.min()}"
    else:
        assert cosine.min() >= 0.9995, f"sentence {int(np.argmin(cosine))}: {cosine.min()}"

    single = embed_gpu(sluice_bin, gpu_model, sentences[:40], "--batch-size", "1",
                       "--gpu-dtype", dtype)
    batched_cos = np.sum(single * vectors[:40], axis=1)
    print(f"GPU {dtype} batched vs single: min cosine {batched_cos.min():.7f}, "
          f"max abs diff {np.abs(single - vectors[:40]).max():.2e}")
    assert batched_cos.min() >= 0.99999


def test_gpu_memory_limit_too_small_is_a_clear_error(sluice_bin, gpu_model):
    proc = subprocess.run([str(sluice_bin), "embed", "--model", str(gpu_model), "--device", "cuda",
                           "--gpu-memory-limit", "1MiB"], input=b"x\n", capture_output=True,
                          timeout=600)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and proc.stdout == b"", err
    assert err.startswith("sluice: error:") and "limit" in err.lower(), err
