"""The image definition, checked without a Docker daemon: its stages, user, entry points, what
it copies (and that .dockerignore lets it through), and that the probe catalogue is found where
the image puts it and the chart mounts it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import CHART, Rendered, full, load_values_file

ROOT = CHART.parents[2]
PLAYBOOKS_IN_IMAGE = "/etc/diagnose/playbooks"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages and keyword == "ARG":
            key, _, default = rest.partition("=")
            args[key.strip()] = default.strip()
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


def copy_sources(stage: Stage) -> set[str]:
    """What the stage's COPY instructions take from the build context."""
    return {
        source
        for copy in stage.all("COPY")
        if not copy.startswith("--from")
        for source in copy.split()[:-1]
    }


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + "$")

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for line in patterns:
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        if any(regex(pattern).match(c) for c in candidates):
            result = not negate
    return result


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_two_stages_on_python_3_11_slim(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    args, stages = dockerfile
    assert [s.name for s in stages] == ["build", "runtime"]
    for stage in stages:
        base = stage.base
        if base.startswith("${"):
            base = args[base[2:-1]]
        assert base.startswith("python:3.11-slim"), base


def test_the_build_stage_makes_wheels_and_the_runtime_installs_only_those(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    _, (build, runtime) = dockerfile
    assert any("pip wheel" in run for run in build.all("RUN"))
    installs = [run for run in runtime.all("RUN") if "pip install" in run]
    assert installs and all("--no-index" in run for run in installs)
    assert not runtime.all("ADD")
    assert not any(copy.startswith(".") or " . " in f" {copy} " for copy in runtime.all("COPY")), (
        "the runtime stage must not copy the source tree"
    )


def test_it_runs_as_the_non_root_user_the_chart_expects(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    """A numeric user: Kubernetes can only check runAsNonRoot against a number."""
    _, stages = dockerfile
    users = stages[-1].all("USER")
    assert users, "the image must not run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    pod = load_values_file()["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))


def test_the_entry_point_and_the_kubectl_plugin_are_console_scripts(
    dockerfile: tuple[dict[str, str], list[Stage]], pyproject: dict[str, Any]
) -> None:
    _, stages = dockerfile
    entrypoint = json.loads(stages[-1].all("ENTRYPOINT")[-1])
    scripts = pyproject["project"]["scripts"]
    assert entrypoint == ["diagnose"]
    assert {"diagnose", "kubectl-diagnose"} <= set(scripts)
    import importlib

    for target in (scripts["diagnose"], scripts["kubectl-diagnose"]):
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function))
    cmd = json.loads(stages[-1].all("CMD")[-1])
    assert cmd[0] == "serve"


def test_it_copies_every_package_setuptools_would_build(
    dockerfile: tuple[dict[str, str], list[Stage]], pyproject: dict[str, Any]
) -> None:
    _, (build, _) = dockerfile
    copied = copy_sources(build)
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file()
        and any(re.fullmatch(g.replace("*", ".*"), p.name) for g in include)
    }
    assert packages and packages <= copied
    assert {"pyproject.toml", "README.md"} <= copied  # the build reads both


def test_dockerignore_lets_through_exactly_what_is_copied(
    dockerfile: tuple[dict[str, str], list[Stage]], dockerignore: list[str]
) -> None:
    _, stages = dockerfile
    sources = set().union(*(copy_sources(stage) for stage in stages))
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, dockerignore), f"COPY {source}: excluded by .dockerignore"
    assert not ignored("diagnose/cli.py", dockerignore)
    assert not ignored("playbooks/probes.yaml", dockerignore)
    for heavy in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "diagnose/__pycache__/cli.cpython-311.pyc",
        "tests/scenarios/x/metrics.om",
    ):
        assert ignored(heavy, dockerignore), f"{heavy} would be sent to the builder"


def test_the_playbooks_live_where_the_chart_mounts_them(
    dockerfile: tuple[dict[str, str], list[Stage]], default_chart: Rendered
) -> None:
    _, stages = dockerfile
    copies = [c.split() for c in stages[-1].all("COPY")]
    assert ["playbooks", PLAYBOOKS_IN_IMAGE] in copies
    assert any(
        f"ln -s {PLAYBOOKS_IN_IMAGE}" in run and "purelib" in run for run in stages[-1].all("RUN")
    )
    spec = default_chart.get("Deployment", full("api"))["spec"]["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "playbooks")
    assert mount["mountPath"] == PLAYBOOKS_IN_IMAGE


def test_the_installed_layout_finds_the_mounted_catalogue(
    default_chart: Rendered, tmp_path: Path
) -> None:
    """As in the image: the packages in a site-packages folder whose playbooks/ links to the
    mounted ConfigMap. The agent's own start-up code finds the probe catalogue and the
    playbooks there."""
    site = tmp_path / "site-packages"
    site.mkdir()
    for package in ("diagnose", "connectors", "graphs", "sandbox"):
        # Copied, not linked: the code resolves its own path, as it does once installed.
        shutil.copytree(
            ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    mounted = tmp_path / "etc" / "diagnose" / "playbooks"
    mounted.mkdir(parents=True)
    for name, text in default_chart.get("ConfigMap", full("playbooks"))["data"].items():
        (mounted / name).write_text(text, encoding="utf-8")
    (site / "playbooks").symlink_to(mounted, target_is_directory=True)
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from sandbox import catalogue\n"
        "from diagnose import playbook, wiring\n"
        "from diagnose.settings import Settings\n"
        "assert str(catalogue.DEFAULT_PATH).startswith(sys.argv[1]), catalogue.DEFAULT_PATH\n"
        "assert str(playbook.DEFAULT_DIR).startswith(sys.argv[1]), playbook.DEFAULT_DIR\n"
        "loaded = wiring.load_playbooks(Settings.from_env({}))\n"
        "assert all(str(p.path).startswith(sys.argv[1]) for p in loaded)\n"
        "print(len(catalogue.load().entries), len(loaded))\n"
    )
    # -S: no site hooks, so the development checkout's editable install cannot step in.
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(site), sysconfig.get_paths()["purelib"]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probes, playbooks = map(int, done.stdout.split())
    shipped = [p for p in (ROOT / "playbooks").glob("*.yaml") if p.name != "probes.yaml"]
    assert probes > 0 and playbooks == len(shipped) > 0
