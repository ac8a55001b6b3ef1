"""Tests for qsetfit.data.embeddings: body resolution and the on-disk embedding cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import qsetfit.data.embeddings as emb
from qsetfit.data.embeddings import DEFAULT_BODY, EmbeddingCache, default_cache_dir, embed, resolve_body
from qsetfit.errors import QSetFitError

DIM = 8


class FakeEncoder:
    """Deterministic stand-in for SentenceTransformer that records what it is asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.kwargs: list[dict] = []

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        self.calls.append(list(texts))
        self.kwargs.append(kwargs)
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") for t in texts]
        return np.stack([np.random.default_rng(s).standard_normal(DIM) for s in seeds])  # float64 on purpose

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Replace the loader; returns {"encoder": FakeEncoder, "loads": [(resolved, device), ...]}."""
    state: dict = {"encoder": FakeEncoder(), "loads": []}

    def loader(resolved: str, device: str) -> FakeEncoder:
        state["loads"].append((resolved, device))
        return state["encoder"]

    monkeypatch.setattr(emb, "_load_encoder", loader)
    return state


@pytest.fixture()
def body(tmp_path: Path) -> Path:
    folder = tmp_path / "my-body"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


# ---------------------------------------------------------------- resolve_body


def test_resolve_default_body_is_local_folder() -> None:
    path = Path(resolve_body(DEFAULT_BODY))
    assert path.is_absolute() and path.is_dir()
    assert (path / "config.json").is_file() and (path / "modules.json").is_file()


def test_resolve_local_folder_and_hub_name(body: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_body(body) == str(body.resolve())
    monkeypatch.chdir(body.parent)
    assert resolve_body("my-body") == str(body.resolve())
    assert resolve_body("sentence-transformers/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"


@pytest.mark.parametrize(("name", "expected"), [("", "body is empty"), ("  ", "body is empty")])
def test_resolve_empty(name: str, expected: str) -> None:
    with pytest.raises(QSetFitError) as info:
        resolve_body(name)
    assert expected in str(info.value)


def test_resolve_file_and_missing_path(body: Path, tmp_path: Path) -> None:
    with pytest.raises(QSetFitError) as info:
        resolve_body(body / "config.json")
    assert "is a file; pass the model folder" in str(info.value)
    for missing in (tmp_path / "nowhere", str(tmp_path / "nowhere"), "./nowhere"):
        with pytest.raises(QSetFitError) as info:
            resolve_body(missing)
        assert "does not exist" in str(info.value) and "nowhere" in str(info.value)


def test_body_identity_tracks_folder_contents(body: Path) -> None:
    before = emb.body_identity(str(body))
    assert before.startswith(str(body)) and before == emb.body_identity(str(body))
    (body / "model.safetensors").write_bytes(b"\1" * 65)
    assert emb.body_identity(str(body)) != before
    assert emb.body_identity("org/model") == "org/model"


# ---------------------------------------------------------------- cache directory


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QSETFIT_CACHE", str(tmp_path / "qc"))
    assert default_cache_dir() == tmp_path / "qc" / "embeddings"
    monkeypatch.delenv("QSETFIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "qsetfit" / "embeddings"


def test_embed_uses_default_cache_dir(fake: dict, body: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QSETFIT_CACHE", str(tmp_path / "qc"))
    embed(["a"], body, show_progress=False)
    files = list((tmp_path / "qc" / "embeddings").iterdir())
    assert len(files) == 1 and files[0].name.startswith("my-body-") and files[0].suffix == ".safetensors"


# ---------------------------------------------------------------- caching behaviour


def test_second_call_encodes_nothing(fake: dict, body: Path, tmp_path: Path) -> None:
    texts = ["good film", "bad food", "good film", "fine"]
    first = embed(texts, body, cache_dir=tmp_path / "c", batch_size=2, show_progress=False)
    assert first.shape == (4, DIM) and first.dtype == np.float32
    assert fake["encoder"].calls == [["good film", "bad food", "fine"]]  # duplicates encoded once
    assert fake["encoder"].kwargs[0]["batch_size"] == 2 and fake["encoder"].kwargs[0]["show_progress_bar"] is False
    assert fake["loads"] == [(str(body.resolve()), "cpu")]
    np.testing.assert_array_equal(first[0], first[2])

    second = embed(texts, body, cache_dir=tmp_path / "c")
    assert fake["encoder"].n_encoded == 3 and len(fake["loads"]) == 1  # nothing encoded, nothing loaded
    np.testing.assert_array_equal(first, second)


def test_partial_hit_encodes_only_new_texts(fake: dict, body: Path, tmp_path: Path) -> None:
    cache = EmbeddingCache(body, cache_dir=tmp_path)
    a = cache.embed(["x", "y"], show_progress=False)
    b = cache.embed(["z", "y", "x", "w"], show_progress=False)
    assert fake["encoder"].calls == [["x", "y"], ["z", "w"]]
    assert cache.encoded == 4
    np.testing.assert_array_equal(b[1], a[1])
    np.testing.assert_array_equal(b[2], a[0])
    fresh = FakeEncoder().encode(["z", "y", "x", "w"]).astype(np.float32)
    np.testing.assert_array_equal(b, fresh)  # rows land in the requested order


def test_cache_file_is_safetensors_without_pickle(fake: dict, body: Path, tmp_path: Path) -> None:
    cache = EmbeddingCache(body, cache_dir=tmp_path / "cache")
    cache.embed(["one", "two"], show_progress=False)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache.path.name]  # no temp files left behind
    raw = cache.path.read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert header["embeddings"]["dtype"] == "F32" and header["embeddings"]["shape"] == [2, DIM]
    assert header["sha256"]["dtype"] == "U8" and header["sha256"]["shape"] == [2, 32]
    assert header["__metadata__"]["identity"] == cache.identity


def test_changed_body_gets_a_new_cache(fake: dict, body: Path, tmp_path: Path) -> None:
    first = EmbeddingCache(body, cache_dir=tmp_path)
    first.embed(["same text"], show_progress=False)
    (body / "config.json").write_text('{"hidden_size": 8, "changed": true}')
    second = EmbeddingCache(body, cache_dir=tmp_path)
    assert second.path != first.path
    second.embed(["same text"], show_progress=False)
    assert fake["encoder"].n_encoded == 2


def test_corrupt_cache_is_rebuilt(fake: dict, body: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = EmbeddingCache(body, cache_dir=tmp_path)
    cache.path.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING, logger="qsetfit.data.embeddings"):
        out = cache.embed(["a", "b"], show_progress=False)
    assert out.shape == (2, DIM) and "ignoring embedding cache" in caplog.text
    assert cache.embed(["b"], show_progress=False).shape == (1, DIM)
    assert fake["encoder"].n_encoded == 2


def test_hub_name_goes_to_loader(fake: dict, tmp_path: Path) -> None:
    embed(["a"], "org/some-model", cache_dir=tmp_path, show_progress=False, device="cuda")
    assert fake["loads"] == [("org/some-model", "cuda")]


def test_loader_failure_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("offline")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", broken)
    with pytest.raises(QSetFitError) as info:
        emb._load_encoder("org/unreachable-model", "cpu")
    assert "could not load the body 'org/unreachable-model' (OSError: offline)" in str(info.value)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("texts", "kwargs", "expected"),
    [
        ([], {}, "texts is empty"),
        ("just one string", {}, "got one string 'just one string'; wrap it: [text]"),
        (["a", None], {}, "texts[1] is None (NoneType), not a string"),
        (["a", float("nan")], {}, "texts[1] is nan (float), not a string"),
        (["a"], {"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ],
)
def test_embed_rejects_bad_input(fake: dict, body: Path, tmp_path: Path, texts: object, kwargs: dict,
                                 expected: str) -> None:
    with pytest.raises(QSetFitError) as info:
        embed(texts, body, cache_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert fake["loads"] == []


# ---------------------------------------------------------------- the real default body


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], np.ndarray]:
    cache_dir = tmp_path_factory.mktemp("minilm-cache")
    texts = ["The film was wonderful.", "The movie was great.", "My tax form is overdue.", "Not bad at all."]
    return cache_dir, texts, embed(texts, DEFAULT_BODY, cache_dir=cache_dir, show_progress=False)


def test_real_body_shapes_and_norms(minilm: tuple[Path, list[str], np.ndarray]) -> None:
    _, texts, out = minilm
    assert out.shape == (len(texts), 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert out[0] @ out[1] > out[0] @ out[2]  # paraphrases closer than unrelated sentences


def test_real_body_cache_hit(minilm: tuple[Path, list[str], np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir, texts, out = minilm

    def no_loading(*args: object) -> None:
        raise AssertionError("the body was loaded although every text is cached")

    monkeypatch.setattr(emb, "_load_encoder", no_loading)
    again = embed(list(reversed(texts)), DEFAULT_BODY, cache_dir=cache_dir)
    np.testing.assert_array_equal(again, out[::-1])
    assert len(os.listdir(cache_dir)) == 1
