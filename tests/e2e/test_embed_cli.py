"""`sluice embed` against sentence-transformers: parity on the committed fixture, batching, and
a clear one-line error for every kind of bad model or bad input."""
import json
import pathlib
import shutil
import struct
import subprocess

import numpy as np
import pytest

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "minilm"
SLUICE: pathlib.Path
MODEL: pathlib.Path


@pytest.fixture(scope="module", autouse=True)
def _paths(sluice_bin, model_dir):
    global SLUICE, MODEL
    SLUICE, MODEL = sluice_bin, model_dir


def read_sentences() -> list[str]:
    text = (FIXTURE / "sentences.txt").read_text(encoding="utf-8")
    return text[:-1].split("\n")


def run_embed(stdin: bytes, *args: str, model: pathlib.Path | None = None
              ) -> subprocess.CompletedProcess:
    return subprocess.run([str(SLUICE), "embed", "--model", str(model or MODEL), *args],
                          input=stdin, capture_output=True, timeout=600)


def embed(lines: list[str], *args: str) -> np.ndarray:
    proc = run_embed(("\n".join(lines) + "\n").encode("utf-8"), *args)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line)["embedding"] for line in proc.stdout.decode().splitlines()]
    assert len(rows) == len(lines)
    return np.array(rows, dtype=np.float32)


def has_gpu() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return read_sentences()


@pytest.fixture(scope="module")
def vectors(sentences) -> np.ndarray:
    return embed(sentences)


def test_matches_sentence_transformers(sentences, vectors):
    reference = np.load(FIXTURE / "reference.npy")
    assert reference.shape == (len(sentences), 384)
    assert vectors.shape == reference.shape
    cosine = np.sum(vectors * reference, axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    max_abs = np.max(np.abs(vectors - reference), axis=1)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= 0.99999, f"sentence {worst}: cosine {cosine[worst]}"
    assert max_abs.max() <= 1e-4, f"sentence {int(np.argmax(max_abs))}: {max_abs.max()}"


def test_batched_equals_single(sentences, vectors):
    single = embed(sentences[:40], "--batch-size", "1")
    assert np.max(np.abs(single - vectors[:40])) <= 1e-6


def test_output_is_one_json_object_per_line():
    proc = run_embed(b"hello\nworld\n")
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line)
        assert list(obj) == ["embedding"] and len(obj["embedding"]) == 384


def test_help_lists_options():
    proc = subprocess.run([str(SLUICE), "embed", "--help"], capture_output=True)
    assert proc.returncode == 0
    assert b"--model" in proc.stdout and b"--batch-size" in proc.stdout


# ---- bad input: each must exit non-zero with one clear line, never crash ----


def assert_clean_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    err = proc.stderr.decode("utf-8", "replace").strip()
    assert proc.returncode > 0, f"rc={proc.returncode} stderr={err}"
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("sluice: error:"), err
    assert needle.lower() in lines[0].lower(), err


def test_cuda_without_a_gpu_is_a_clear_error():
    if has_gpu():
        pytest.skip("this machine has a GPU")
    assert_clean_error(run_embed(b"x\n", "--device", "cuda"), "cuda")


def test_unknown_device():
    assert_clean_error(run_embed(b"x\n", "--device", "tpu"), "tpu")


@pytest.mark.parametrize("flag,value", [("--gpu-dtype", "fp4"), ("--gpu-memory-limit", "lots"),
                                        ("--gpu-memory-limit", "-5")])
def test_bad_gpu_flags_are_refused(flag, value):
    proc = run_embed(b"x\n", flag, value)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert flag in err and proc.stdout == b"", err


def test_gpu_flags_are_ignored_on_the_cpu():
    # A GPU compute type or memory limit does not change the CPU backend's vectors.
    plain = embed(["a sentence"])
    flagged = embed(["a sentence"], "--gpu-dtype", "fp8", "--gpu-memory-limit", "2GiB")
    assert np.array_equal(plain, flagged)


def copy_model(tmp_path: pathlib.Path, weights: bool = True) -> pathlib.Path:
    dst = tmp_path / "model"
    shutil.copytree(MODEL, dst, ignore=None if weights else shutil.ignore_patterns("*.safetensors"))
    return dst


def write_safetensors(path: pathlib.Path, header: dict, data: bytes, header_len=None) -> None:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    n = len(raw) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + raw + data)


def test_missing_model_dir(tmp_path):
    assert_clean_error(run_embed(b"x\n", model=tmp_path / "nope"), "nope")


def test_missing_config(tmp_path):
    model = copy_model(tmp_path)
    (model / "config.json").unlink()
    assert_clean_error(run_embed(b"x\n", model=model), "config.json")


def test_corrupt_config(tmp_path):
    model = copy_model(tmp_path)
    (model / "config.json").write_text("{not json")
    assert_clean_error(run_embed(b"x\n", model=model), "config.json")


def test_missing_tokenizer(tmp_path):
    model = copy_model(tmp_path)
    (model / "tokenizer.json").unlink()
    assert_clean_error(run_embed(b"x\n", model=model), "tokenizer.json")


def test_pytorch_bin_refused(tmp_path):
    model = copy_model(tmp_path, weights=False)
    (model / "pytorch_model.bin").write_bytes(b"PK\x03\x04 pickle")
    assert_clean_error(run_embed(b"x\n", model=model), "pytorch_model.bin")


def test_no_weights(tmp_path):
    model = copy_model(tmp_path, weights=False)
    assert_clean_error(run_embed(b"x\n", model=model), "safetensors")


def test_truncated_safetensors(tmp_path):
    model = copy_model(tmp_path)
    path = model / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_clean_error(run_embed(b"x\n", model=model), "model.safetensors")


def test_header_length_beyond_file(tmp_path):
    model = copy_model(tmp_path, weights=False)
    write_safetensors(model / "model.safetensors", {}, b"", header_len=1 << 40)
    assert_clean_error(run_embed(b"x\n", model=model), "model.safetensors")


def test_lying_offsets(tmp_path):
    model = copy_model(tmp_path, weights=False)
    header = {"embeddings.word_embeddings.weight":
              {"dtype": "F32", "shape": [30522, 384], "data_offsets": [0, 30522 * 384 * 4]}}
    write_safetensors(model / "model.safetensors", header, b"\0" * 64)
    assert_clean_error(run_embed(b"x\n", model=model), "embeddings.word_embeddings.weight")


def test_unknown_architecture(tmp_path):
    model = copy_model(tmp_path)
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "mamba"
    config["architectures"] = ["MambaModel"]
    (model / "config.json").write_text(json.dumps(config))
    assert_clean_error(run_embed(b"x\n", model=model), "mamba")


def test_unsupported_dtype(tmp_path):
    model = copy_model(tmp_path)
    path = model / "model.safetensors"
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    # Same bytes, relabelled: a 4-byte F32 tensor becomes I32.
    header["embeddings.LayerNorm.weight"]["dtype"] = "I32"
    write_safetensors(path, header, bytes(data[8 + n:]))
    assert_clean_error(run_embed(b"x\n", model=model), "I32")


def test_invalid_utf8_line():
    proc = run_embed(b"fine\n\xff\xfe broken\n")
    assert_clean_error(proc, "line 2")


def test_over_long_input_without_truncation():
    proc = run_embed(("word " * 400 + "\n").encode(), "--no-truncate")
    assert_clean_error(proc, "256")
