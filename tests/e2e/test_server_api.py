"""End-to-end tests of `sluice serve`: the real binary, the real all-MiniLM-L6-v2, real clients
(the official `openai` SDK and `requests`).

The SluiceServer helper and the `server` fixture are shared with test_server_robustness.py.
"""
import base64
import concurrent.futures
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / "build" / "sluice"
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
FIXTURE = ROOT / "tests" / "fixtures" / "minilm"
MODEL_NAME = "all-MiniLM-L6-v2"
# CPU fp32 against sentence-transformers' torch fp32.
ATOL = 2e-5

pytestmark = pytest.mark.skipif(
    not BINARY.exists() or not MODEL.exists(), reason="needs build/sluice and the model"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SluiceServer:
    """`sluice serve` on a free port; waits for /ready."""

    def __init__(self, *extra_args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(BINARY), "serve", "--model", str(MODEL), "--host", "127.0.0.1",
                "--port", str(self.port), *extra_args]
        self.log = open(ROOT / "build" / f"e2e-serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
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
                self.stop()
                raise RuntimeError("sluice serve did not become ready:\n" + self.logs())
            time.sleep(0.05)

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def post(self, path: str, body, **kwargs) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return requests.post(self.url + path, data=data, headers=headers, timeout=30, **kwargs)

    def embed_one(self, text: str) -> np.ndarray:
        r = self.post("/embed", {"inputs": text, "truncate": True})
        assert r.status_code == 200, r.text
        return np.array(r.json()[0], dtype=np.float32)


@pytest.fixture(scope="module")
def server():
    s = SluiceServer("--max-client-batch-size", "64", "--payload-limit", "1000000",
                     "--header-timeout-ms", "1000")
    yield s
    assert s.stop() == 0


def read_sentences() -> list[str]:
    text = (FIXTURE / "sentences.txt").read_text(encoding="utf-8")
    return text[:-1].split("\n")


@pytest.fixture(scope="module")
def reference():
    """The fixture's sentences and vectors, less the empty line (the server refuses empty
    inputs; the embed CLI tests use it)."""
    sentences, vectors = read_sentences(), np.load(FIXTURE / "reference.npy")
    keep = [i for i, s in enumerate(sentences) if s]
    return [sentences[i] for i in keep], vectors[keep]


def openai_client(server):
    import openai
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_health_ready_info_models(server):
    assert requests.get(server.url + "/health").json() == {"status": "ok"}
    assert requests.get(server.url + "/ready").json() == {"status": "ready"}
    info = requests.get(server.url + "/info").json()
    assert info["model_id"] == MODEL_NAME
    assert info["embedding_dim"] == 384
    assert info["max_input_length"] == 256
    assert info["max_client_batch_size"] == 64
    assert info["version"].startswith("sluice ")
    models = requests.get(server.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL_NAME]


def test_request_id_is_echoed(server):
    r = server.post("/embed", {"inputs": "hi"}, headers={"x-request-id": "e2e-42"})
    assert r.headers["x-request-id"] == "e2e-42"
    assert len(requests.get(server.url + "/health").headers["x-request-id"]) == 16


def token_counts(texts: list[str]) -> list[int]:
    """Tokens per text with special tokens, untruncated, from the HF tokenizers library."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return [len(e.ids) for e in tok.encode_batch(texts)]


def test_openai_sdk_vectors_match_the_reference(server, reference):
    sentences, vectors = reference
    counts = token_counts(sentences)
    fits = [i for i, n in enumerate(counts) if n <= 256][:40]
    client = openai_client(server)
    # The SDK asks for base64 by default and decodes it as little-endian float32.
    got = client.embeddings.create(model=MODEL_NAME, input=[sentences[i] for i in fits])
    assert [d.index for d in got.data] == list(range(len(fits)))
    np.testing.assert_allclose(np.array([d.embedding for d in got.data]), vectors[fits],
                               atol=ATOL)
    assert got.usage.prompt_tokens == sum(counts[i] for i in fits)
    assert got.usage.total_tokens == got.usage.prompt_tokens
    assert got.model == MODEL_NAME


def test_float_and_base64_carry_the_same_floats(server):
    texts = ["PostgreSQL keeps the data.", "Embeddings turn text into vectors."]
    as_float = server.post("/v1/embeddings", {"input": texts, "encoding_format": "float"}).json()
    as_b64 = server.post("/v1/embeddings", {"input": texts, "encoding_format": "base64"}).json()
    for f, b in zip(as_float["data"], as_b64["data"]):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        # to_chars writes the shortest text that reads back to the same float: exact equality.
        assert decoded.tolist() == np.array(f["embedding"], dtype=np.float32).tolist()


def test_every_sentence_matches_with_truncation(server, reference):
    sentences, vectors = reference
    r = server.post("/embed", {"inputs": sentences[:64], "truncate": True})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.array(r.json(), dtype=np.float32), vectors[:64], atol=ATOL)


def test_token_id_inputs_equal_text_inputs(server):
    texts = ["A man is eating food.", "The quick brown fox jumps over the lazy dog."]
    ids = [[t["id"] for t in seq]
           for seq in requests.post(server.url + "/tokenize", json={"inputs": texts}).json()]
    by_text = server.post("/v1/embeddings", {"input": texts, "encoding_format": "float"}).json()
    by_ids = server.post("/v1/embeddings", {"input": ids, "encoding_format": "float"}).json()
    one = server.post("/v1/embeddings", {"input": ids[0], "encoding_format": "float"}).json()
    for a, b in zip(by_text["data"], by_ids["data"]):
        assert a["embedding"] == b["embedding"]
    # Alone rather than in a batch of two: equal up to BLAS blocking.
    np.testing.assert_allclose(one["data"][0]["embedding"], by_text["data"][0]["embedding"],
                               atol=1e-6)


def test_dimensions_truncate_then_renormalise(server):
    client = openai_client(server)
    full = np.array(client.embeddings.create(input="vectors", model=MODEL_NAME,
                                             encoding_format="float").data[0].embedding)
    cut = np.array(client.embeddings.create(input="vectors", model=MODEL_NAME, dimensions=64,
                                            encoding_format="float").data[0].embedding)
    assert cut.shape == (64,)
    np.testing.assert_allclose(cut, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)


def test_tei_normalize_false_and_truncation_direction(server):
    raw = np.array(server.post("/embed", {"inputs": "hello world", "normalize": False}).json()[0])
    unit = np.array(server.post("/embed", {"inputs": "hello world"}).json()[0])
    assert abs(np.linalg.norm(raw) - 1) > 1e-3
    np.testing.assert_allclose(raw / np.linalg.norm(raw), unit, atol=1e-6)
    long_text = " ".join(["alpha"] * 300 + ["omega"] * 300)
    right = server.post("/embed", {"inputs": long_text, "truncate": True}).json()[0]
    left = server.post("/embed", {"inputs": long_text, "truncate": True,
                                  "truncation_direction": "Left"}).json()[0]
    assert right != left
    only_alpha = server.post("/embed", {"inputs": " ".join(["alpha"] * 254)}).json()[0]
    np.testing.assert_allclose(right, only_alpha, atol=1e-6)


def test_tokenize_returns_ids_and_tokens(server):
    r = requests.post(server.url + "/tokenize", json={"inputs": "Hello world"}).json()
    assert [t["text"] for t in r[0]] == ["[CLS]", "hello", "world", "[SEP]"]
    assert r[0][0]["id"] == 101
    plain = requests.post(server.url + "/tokenize",
                          json={"inputs": ["Hello world"], "add_special_tokens": False}).json()
    assert [t["text"] for t in plain[0]] == ["hello", "world"]


def test_hundreds_of_concurrent_mixed_requests_each_get_their_own_vectors(server, reference):
    sentences, _ = reference
    pool = sentences[:60]
    expected = {s: server.embed_one(s) for s in pool}

    def one(k: int):
        n = 1 + k % 5
        texts = [pool[(k * 7 + j) % len(pool)] for j in range(n)]
        body = {"input": texts, "encoding_format": "float" if k % 2 else "base64"}
        r = server.post("/v1/embeddings", body)
        assert r.status_code == 200, r.text
        out = []
        for d in r.json()["data"]:
            e = d["embedding"]
            out.append(np.frombuffer(base64.b64decode(e), dtype="<f4") if isinstance(e, str)
                       else np.array(e, dtype=np.float32))
        return texts, out

    with concurrent.futures.ThreadPoolExecutor(max_workers=48) as ex:
        results = list(ex.map(one, range(300)))
    for texts, vecs in results:
        assert len(vecs) == len(texts)
        for t, v in zip(texts, vecs):
            np.testing.assert_allclose(v, expected[t], atol=1e-5)


def test_vectors_equal_the_embed_command(server, reference):
    sentences, _ = reference
    counts = token_counts(sentences)
    texts = [s for s, n in zip(sentences, counts) if n <= 256][:48]
    cli = subprocess.run([str(BINARY), "embed", "--model", str(MODEL)],
                         input="\n".join(texts).encode() + b"\n", capture_output=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr.decode()
    offline = np.array([json.loads(line)["embedding"] for line in cli.stdout.splitlines()],
                       dtype=np.float32)
    # Computed by the server (bypassing the cache), in batches other than the CLI's.
    r = server.post("/v1/embeddings", {"input": texts, "encoding_format": "float"},
                    headers={"x-sluice-cache": "bypass"})
    assert r.status_code == 200, r.text
    served = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert served.shape == offline.shape == (len(texts), 384)
    assert np.max(np.abs(served - offline)) <= 1e-6
