"""The result cache and /metrics of the real `sluice serve`: hits carry exactly the computed
vectors, identical requests in flight are computed once, `x-sluice-cache: bypass` opts out, and
the Prometheus families move with the traffic."""
import concurrent.futures
import time

import numpy as np
import pytest
import requests

from test_server_api import SluiceServer, pytestmark, token_counts  # noqa: F401


def scrape(server) -> dict[str, float]:
    """/metrics as {'name{labels}': value} (comments skipped)."""
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def delta(before: dict, after: dict, name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def embed(server, texts, headers=None, **extra):
    r = server.post("/v1/embeddings", {"input": texts, "encoding_format": "float", **extra},
                    headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def vectors(body) -> np.ndarray:
    return np.array([d["embedding"] for d in body["data"]], dtype=np.float32)


@pytest.fixture(scope="module")
def server():
    # A long queue delay lets concurrent identical requests meet in flight.
    s = SluiceServer("--max-queue-delay-us", "100000")
    yield s
    assert s.stop() == 0


def test_hits_carry_exactly_the_computed_vectors(server):
    texts = ["cache me once", "and me too"]
    before = scrape(server)
    miss = embed(server, texts)
    mid = scrape(server)
    hit = embed(server, texts)
    after = scrape(server)
    assert delta(before, mid, "sluice_cache_misses_total") == 2
    assert delta(before, mid, "sluice_batch_size_sum") == 2
    assert delta(mid, after, "sluice_cache_hits_total") == 2
    assert delta(mid, after, "sluice_batch_size_sum") == 0  # nothing computed
    assert vectors(hit).tolist() == vectors(miss).tolist()
    assert hit["usage"] == miss["usage"]  # usage counts cached inputs too
    # The TEI route with the same options shares the entries.
    tei = requests.post(server.url + "/embed", json={"inputs": texts}).json()
    assert np.array(tei, dtype=np.float32).tolist() == vectors(miss).tolist()
    # A shorter `dimensions` is cut from the cached full vector.
    cut = vectors(embed(server, texts[:1], dimensions=32))[0]
    full = vectors(miss)[0]
    np.testing.assert_allclose(cut, full[:32] / np.linalg.norm(full[:32]), atol=1e-6)
    assert delta(mid, scrape(server), "sluice_batch_size_sum") == 0


def test_bypass_neither_reads_nor_fills(server):
    bypass = {"x-sluice-cache": "bypass"}
    before = scrape(server)
    first = embed(server, ["not to be cached"], headers=bypass)
    mid = scrape(server)
    assert delta(before, mid, "sluice_cache_misses_total") == 0
    assert delta(before, mid, "sluice_cache_entries") == 0
    assert delta(before, mid, "sluice_batch_size_sum") == 1
    embed(server, ["not to be cached"])  # a miss: the bypass left nothing behind
    after = scrape(server)
    assert delta(mid, after, "sluice_cache_misses_total") == 1
    again = embed(server, ["not to be cached"], headers={"X-Sluice-Cache": "BYPASS"})
    assert delta(after, scrape(server), "sluice_batch_size_sum") == 1  # computed again
    assert delta(after, scrape(server), "sluice_cache_hits_total") == 0
    np.testing.assert_allclose(vectors(again), vectors(first), atol=1e-6)
    r = server.post("/v1/embeddings", {"input": "x"}, headers={"x-sluice-cache": "maybe"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_argument"


def test_identical_requests_in_flight_are_computed_once(server):
    text = "sixteen clients ask for the same thing at once"
    before = scrape(server)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        bodies = list(ex.map(lambda _: embed(server, [text]), range(16)))
    after = scrape(server)
    assert delta(before, after, "sluice_batch_size_sum") == 1
    assert delta(before, after, "sluice_cache_misses_total") + \
        delta(before, after, "sluice_cache_hits_total") == 16
    assert delta(before, after, "sluice_cache_coalesced_total") >= 1
    first = vectors(bodies[0]).tolist()
    assert all(vectors(b).tolist() == first for b in bodies)


def test_metrics_families_move_with_traffic(server):
    texts = ["metrics one", "metrics two three"]
    tokens = sum(token_counts(texts))
    before = scrape(server)
    embed(server, texts)
    requests.post(server.url + "/embed", json={"inputs": ""})  # 400
    after = scrape(server)
    ok = 'sluice_requests_total{route="/v1/embeddings",status="200"}'
    bad = 'sluice_requests_total{route="/embed",status="400"}'
    assert delta(before, after, ok) == 1
    assert delta(before, after, bad) == 1
    assert delta(before, after,
                 'sluice_request_duration_seconds_count{route="/v1/embeddings"}') == 1
    assert delta(before, after, "sluice_tokenization_duration_seconds_count") == 1
    assert delta(before, after, "sluice_input_length_tokens_count") == 2
    assert delta(before, after, "sluice_input_length_tokens_sum") == tokens
    assert delta(before, after, "sluice_batch_size_count") >= 1
    assert delta(before, after, "sluice_batch_tokens_sum") == tokens
    assert delta(before, after, "sluice_queue_duration_seconds_count") == 2
    assert delta(before, after, "sluice_inference_duration_seconds_count") >= 1
    # The 100 ms queue delay shows in the queue histogram.
    assert delta(before, after, "sluice_queue_duration_seconds_sum") >= 0.15
    for gauge in ("sluice_queue_depth", "sluice_requests_in_flight", "sluice_cache_entries",
                  "sluice_cache_bytes"):
        assert gauge in after
    assert after["sluice_requests_in_flight"] == 0
    # Unknown paths share one label value.
    requests.get(server.url + "/no/such/path/12345")
    assert 'sluice_requests_total{route="other",status="404"}' in scrape(server)


def test_cache_off_computes_every_time():
    s = SluiceServer("--cache-bytes", "0")
    try:
        before = scrape(s)
        a = embed(s, ["uncached"])
        b = embed(s, ["uncached"])
        after = scrape(s)
        assert delta(before, after, "sluice_batch_size_sum") == 2
        assert after["sluice_cache_hits_total"] == after["sluice_cache_misses_total"] == 0
        np.testing.assert_allclose(vectors(a), vectors(b), atol=1e-6)
    finally:
        assert s.stop() == 0


def test_entries_expire_after_the_ttl():
    s = SluiceServer("--cache-ttl-seconds", "1")
    try:
        embed(s, ["short-lived"])
        embed(s, ["short-lived"])
        mid = scrape(s)
        assert mid["sluice_cache_hits_total"] == 1
        time.sleep(1.2)
        embed(s, ["short-lived"])
        after = scrape(s)
        assert delta(mid, after, "sluice_cache_misses_total") == 1
        assert delta(mid, after, "sluice_cache_expirations_total") == 1
        assert delta(mid, after, "sluice_batch_size_sum") == 1
    finally:
        assert s.stop() == 0
