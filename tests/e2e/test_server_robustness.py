"""Bad inputs and bad clients against the real `sluice serve`: each gets a clear error (or is cut
off), and the server answers the next request correctly."""
import socket
import threading
import time

import numpy as np
import pytest
import requests

from test_server_api import (MODEL_NAME, SluiceServer, pytestmark, server)  # noqa: F401

GOOD = {"input": "still fine", "encoding_format": "float"}


@pytest.fixture(scope="module")
def good_vector(server):  # noqa: F811
    r = server.post("/v1/embeddings", GOOD)
    assert r.status_code == 200
    return r.json()["data"][0]["embedding"]


def assert_next_request_ok(server, good_vector):  # noqa: F811
    r = server.post("/v1/embeddings", GOOD)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["data"][0]["embedding"], good_vector, atol=1e-6)


BAD_REQUESTS = [
    # (name, path, body, status, code)
    ("not JSON", "/v1/embeddings", b"this is not json", 400, "invalid_argument"),
    ("truncated JSON", "/v1/embeddings", b'{"input": "abc"', 400, "invalid_argument"),
    ("not an object", "/v1/embeddings", b'["abc"]', 400, "invalid_argument"),
    ("input is a number", "/v1/embeddings", b'{"input": 5}', 400, "invalid_argument"),
    ("input mixes types", "/v1/embeddings", b'{"input": ["a", 5]}', 400, "invalid_argument"),
    ("missing input", "/v1/embeddings", b'{"model": "x"}', 400, "invalid_argument"),
    ("empty input array", "/v1/embeddings", b'{"input": []}', 400, "invalid_argument"),
    ("empty string", "/v1/embeddings", b'{"input": ""}', 400, "invalid_argument"),
    ("empty string in a batch", "/v1/embeddings", b'{"input": ["a", ""]}', 400,
     "invalid_argument"),
    ("empty token list", "/v1/embeddings", b'{"input": [[101], []]}', 400, "invalid_argument"),
    ("token id outside the vocabulary", "/v1/embeddings", b'{"input": [101, 999999]}', 400,
     "invalid_argument"),
    ("invalid UTF-8", "/v1/embeddings", b'{"input": "caf\xc3\x28"}', 400, "invalid_argument"),
    ("unknown model", "/v1/embeddings", b'{"model": "gpt-9", "input": "a"}', 404, "not_found"),
    ("bad encoding_format", "/v1/embeddings", b'{"input": "a", "encoding_format": "hex"}', 400,
     "invalid_argument"),
    ("dimensions too large", "/v1/embeddings", b'{"input": "a", "dimensions": 385}', 400,
     "invalid_argument"),
    ("too many inputs", "/v1/embeddings", ('{"input": [%s]}' % ",".join(['"a"'] * 65)).encode(),
     413, "too_large"),
    ("too many tokens", "/v1/embeddings",
     ('{"input": "%s"}' % " ".join(["word"] * 400)).encode(), 413, "too_large"),
    ("too many token ids", "/v1/embeddings", ('{"input": [%s]}' % ",".join(["1000"] * 300))
     .encode(), 413, "too_large"),
    ("TEI bad direction", "/embed", b'{"inputs": "a", "truncation_direction": "Up"}', 400,
     "invalid_argument"),
    ("TEI too many tokens", "/embed", ('{"inputs": "%s"}' % " ".join(["word"] * 400)).encode(),
     413, "too_large"),
]


@pytest.mark.parametrize("name,path,body,status,code", BAD_REQUESTS,
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_gets_a_clear_error(server, good_vector, name, path, body, status, code):  # noqa: F811
    r = server.post(path, body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["type"] in ("invalid_request_error", "not_found_error")
    assert r.headers["x-request-id"]
    assert_next_request_ok(server, good_vector)


def test_payload_over_the_limit_is_413(server, good_vector):  # noqa: F811
    body = '{"input": "%s"}' % ("x" * 1_100_000)
    r = server.post("/v1/embeddings", body)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert_next_request_ok(server, good_vector)


def test_unknown_route_and_wrong_method(server, good_vector):  # noqa: F811
    r = requests.get(server.url + "/v2/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = requests.get(server.url + "/v1/embeddings")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    r = requests.delete(server.url + "/health")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"
    assert_next_request_ok(server, good_vector)


def test_bad_request_timeout_header(server):  # noqa: F811
    r = server.post("/v1/embeddings", GOOD, headers={"x-request-timeout-ms": "soon"})
    assert r.status_code == 400


def raw_connection(server):  # noqa: F811
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def test_client_disconnect_mid_request(server, good_vector):  # noqa: F811
    body = b'{"input": ["%s"]}' % b'", "'.join([b"disconnecting client"] * 32)
    for _ in range(5):
        s = raw_connection(server)
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        s.close()
    # Half a body, then gone.
    s = raw_connection(server)
    s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{\"in")
    s.close()
    assert_next_request_ok(server, good_vector)


def test_slow_loris_headers_are_cut_off(server, good_vector):  # noqa: F811
    s = raw_connection(server)
    s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: t\r\n")
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < 5:
        # Meanwhile other clients are served at once.
        t0 = time.monotonic()
        assert_next_request_ok(server, good_vector)
        assert time.monotonic() - t0 < 1.0
        try:
            s.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.2)
        except OSError:
            closed = True
            break
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except OSError:
            closed = True
            break
    assert closed, "a connection trickling headers was never closed"
    assert time.monotonic() - started < 3  # --header-timeout-ms 1000
    s.close()


def test_keep_alive_connection_serves_many_requests(server, good_vector):  # noqa: F811
    with requests.Session() as session:
        for _ in range(20):
            r = session.post(server.url + "/v1/embeddings", json=GOOD)
            assert r.status_code == 200
            np.testing.assert_allclose(r.json()["data"][0]["embedding"], good_vector, atol=1e-6)


def test_over_capacity_is_429_with_retry_after():
    # One request at a time; the queue delay keeps the first in flight long enough.
    s = SluiceServer("--max-concurrent-requests", "1", "--max-queue-delay-us", "400000",
                     "--max-batch-requests", "64")
    try:
        first = {}

        def slow():
            first["r"] = s.post("/v1/embeddings", {"input": "one", "encoding_format": "float"})

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.1)
        for body in ({"input": "two"}, {"input": ["a", "b", "c"]}):  # single and batch alike
            r = s.post("/v1/embeddings", body)
            assert r.status_code == 429, r.text
            assert r.headers["Retry-After"] == "1"
            assert r.json()["error"]["code"] == "resource_exhausted"
        t.join()
        assert first["r"].status_code == 200
        assert s.post("/v1/embeddings", {"input": "three"}).status_code == 200
    finally:
        assert s.stop() == 0


def test_request_timeout_header_answers_504_without_waiting():
    s = SluiceServer("--max-queue-delay-us", "2000000", "--max-batch-requests", "64")
    try:
        t0 = time.monotonic()
        r = s.post("/v1/embeddings", {"input": "late"}, headers={"x-request-timeout-ms": "100"})
        assert r.status_code == 504
        assert r.json()["error"]["code"] == "deadline_exceeded"
        assert time.monotonic() - t0 < 1.5
    finally:
        assert s.stop() == 0


def test_sigterm_finishes_in_flight_requests_and_exits_0():
    s = SluiceServer("--max-queue-delay-us", "500000", "--max-batch-requests", "64")
    result = {}

    def slow():
        result["r"] = s.post("/v1/embeddings", {"input": "in flight", "encoding_format": "float"})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.15)
    assert s.stop() == 0
    t.join()
    assert result["r"].status_code == 200
    assert len(result["r"].json()["data"][0]["embedding"]) == 384
