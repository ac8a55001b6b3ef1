"""Packaging: the project metadata builds without setuptools' deprecation warnings (issue 12 item 10)."""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_license_is_an_spdx_string_not_the_deprecated_table():
    meta = tomllib.loads(PYPROJECT.read_text())
    assert meta["project"]["license"] == "Apache-2.0"  # a {text = ...} table warns on every install
    assert any(r.startswith("setuptools>=77") for r in meta["build-system"]["requires"])  # SPDX strings need 77


def test_ray_and_pydoe3_install_with_the_project():
    deps = " ".join(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])
    assert "ray" in deps and "pyDOE3" in deps
