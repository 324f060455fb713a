"""The krew manifest template: krew's Plugin format, every platform complete, filled correctly."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "krew" / "diagnose.yaml"
RENDER = ROOT / "deploy" / "krew" / "render.py"
PLATFORMS = {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}


def _archive(folder: Path, os_name: str, arch: str) -> Path:
    """A release archive as krew downloads it: one executable named kubectl-diagnose."""
    path = folder / f"kubectl-diagnose_{os_name}_{arch}.tar.gz"
    script = f"#!/bin/sh\necho {os_name}-{arch}\n".encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("kubectl-diagnose")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return path


def _render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RENDER), *args], capture_output=True, text=True, timeout=60
    )


def _release(tmp_path: Path) -> list[str]:
    archives = [str(_archive(tmp_path, o, a)) for o, a in sorted(PLATFORMS)]
    return [
        "--version",
        "v0.1.0",
        "--homepage",
        "https://example.org/diagnose",
        "--base-url",
        "https://example.org/releases/v0.1.0/",
        *archives,
    ]


def test_the_template_is_a_krew_plugin_named_after_its_file() -> None:
    manifest = yaml.safe_load(TEMPLATE.read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == TEMPLATE.stem == "diagnose"
    spec = manifest["spec"]
    for required in ("version", "homepage", "shortDescription", "platforms"):
        assert spec.get(required), f"spec.{required} is required"
    assert len(spec["shortDescription"]) <= 80


def test_every_platform_has_a_selector_uri_checksum_and_the_plugin_binary() -> None:
    platforms: list[dict[str, Any]] = yaml.safe_load(TEMPLATE.read_text())["spec"]["platforms"]
    seen = set()
    for platform in platforms:
        labels = platform["selector"]["matchLabels"]
        seen.add((labels["os"], labels["arch"]))
        assert platform["uri"] and platform["sha256"]
        assert platform["bin"] == "kubectl-diagnose"
    assert seen == PLATFORMS and len(platforms) == len(PLATFORMS)


def test_the_binary_is_the_console_script_the_package_installs() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-diagnose"] == "diagnose.cli:kubectl_main"


def test_rendering_fills_urls_and_the_archives_real_checksums(tmp_path: Path) -> None:
    done = _render(*_release(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "{{" not in done.stdout
    manifest = yaml.safe_load(done.stdout)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", manifest["spec"]["version"])
    for platform in manifest["spec"]["platforms"]:
        labels = platform["selector"]["matchLabels"]
        name = f"kubectl-diagnose_{labels['os']}_{labels['arch']}.tar.gz"
        assert platform["uri"] == f"https://example.org/releases/v0.1.0/{name}"
        assert platform["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--version", "0.1"), "semantic version"),
        (("--base-url", "http://example.org/r"), "https only"),
    ],
)
def test_rendering_refuses_bad_release_inputs(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    args = _release(tmp_path)
    args[args.index(change[0]) + 1] = change[1]
    done = _render(*args)
    assert done.returncode == 2 and message in done.stderr
    assert done.stdout == ""


def test_rendering_refuses_to_leave_a_platform_unfilled(tmp_path: Path) -> None:
    args = _release(tmp_path)
    done = _render(*[a for a in args if "darwin_arm64" not in a])
    assert done.returncode == 2
    assert "SHA256_DARWIN_ARM64" in done.stderr and "URI_DARWIN_ARM64" in done.stderr
