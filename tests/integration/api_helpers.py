"""Helpers for the REST API integration tests (FastAPI's TestClient on a tiny model)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from signals import clip_bytes

SR = 16000
ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 400_000
MAX_DURATION = 10.0


def encode(wave: np.ndarray, fmt: str, sr: int = SR) -> bytes:
    return clip_bytes(wave, sr, fmt)


def make_test_client(app):
    with warnings.catch_warnings():  # starlette's notice about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


def post(client, path: str, data: bytes, name: str = "clip.wav", **kw):
    return client.post(path, files={"file": (name, data, "application/octet-stream")}, **kw)


def assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"]
    return body
