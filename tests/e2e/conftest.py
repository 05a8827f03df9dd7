"""Shared fixtures of the end-to-end tests: the repository, the real binary, the real model."""

import os
import pathlib
import subprocess

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sluice_bin(repo_root) -> pathlib.Path:
    """build/sluice, or $SLUICE_BIN."""
    path = pathlib.Path(os.environ.get("SLUICE_BIN", repo_root / "build" / "sluice"))
    if not path.is_file():
        pytest.fail(f"{path} does not exist: build it first (scripts/build.sh)")
    return path


@pytest.fixture(scope="session")
def model_dir(repo_root) -> pathlib.Path:
    """The real all-MiniLM-L6-v2 (scripts/fetch-model.sh)."""
    path = repo_root / "models" / "all-MiniLM-L6-v2"
    if not (path / "tokenizer.json").is_file():
        pytest.fail(f"{path} is missing: run scripts/fetch-model.sh")
    return path


@pytest.fixture(scope="session")
def run_sluice(sluice_bin):
    """run_sluice(*args, input=bytes|str, timeout=s) -> CompletedProcess with bytes stdout/stderr."""

    def run(*args, input=b"", timeout=300):
        if isinstance(input, str):
            input = input.encode("utf-8")
        return subprocess.run(
            [str(sluice_bin), *map(str, args)],
            input=input,
            capture_output=True,
            timeout=timeout,
        )

    return run
