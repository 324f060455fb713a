"""Archives given to `diagnose eval`: extracted once into the cache (a marker written last, so an
interrupted extraction is redone), never outside it, and chosen from with --only and --limit."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from diagnose import evaluation
from diagnose.domain import errors


def _archive(
    path: Path, files: dict[str, str], *, links: dict[str, tuple[str, bool]] | None = None
) -> Path:
    """A tar archive (compressed as its name says) of ``files`` and ``links`` (name → (target,
    symbolic))."""
    mode = {"xz": "w:xz", "gz": "w:gz"}.get(path.name.rsplit(".", 1)[-1], "w")
    with tarfile.open(path, mode) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (target, symbolic) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE if symbolic else tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def _quiet(_message: str) -> None:
    pass


def _suite(path: Path, names: list[str]) -> Path:
    return _archive(path, {f"suite/{n}/scenario.yaml": f"name: {n}\n" for n in names})


def test_an_archive_is_extracted_once_and_reused(tmp_path: Path) -> None:
    """The second call finds the marker, says so, and leaves the folder as it is."""
    archive = _suite(tmp_path / "tiny.tar.xz", ["a", "b"])
    said: list[str] = []
    first = evaluation.extract(archive, cache=tmp_path / "cache", progress=said.append)
    assert first.parent == tmp_path / "cache" / "datasets"
    assert first.name.startswith("tiny-") and (first / evaluation.MARKER).is_file()
    (first / "kept").write_text("still here")
    again = evaluation.extract(archive, cache=tmp_path / "cache", progress=said.append)
    assert again == first and (again / "kept").read_text() == "still here"
    assert "extracting" in said[0] and "extracted before" in said[1]


def test_an_interrupted_extraction_is_redone(tmp_path: Path) -> None:
    """A folder without the marker (the process died half-way) is emptied and filled again."""
    archive = _suite(tmp_path / "tiny.tar.gz", ["a"])
    cache = tmp_path / "cache"
    folder = evaluation.extract(archive, cache=cache, progress=_quiet)
    (folder / evaluation.MARKER).unlink()
    (folder / "suite" / "a" / "scenario.yaml").unlink()
    (folder / "half-written").write_text("")
    assert evaluation.extract(archive, cache=cache, progress=_quiet) == folder
    assert (folder / "suite" / "a" / "scenario.yaml").is_file()
    assert not (folder / "half-written").exists() and (folder / evaluation.MARKER).is_file()


def test_another_content_is_extracted_into_another_folder(tmp_path: Path) -> None:
    """The folder is named after a hash of the content, so a changed archive is not mistaken
    for the one extracted before."""
    cache = tmp_path / "cache"
    old = evaluation.extract(_suite(tmp_path / "s.tar", ["a"]), cache=cache, progress=_quiet)
    new = evaluation.extract(_suite(tmp_path / "s.tar", ["a", "b"]), cache=cache, progress=_quiet)
    assert old != new and (new / "suite" / "b" / "scenario.yaml").is_file()


@pytest.mark.parametrize(
    ("files", "links"),
    [
        ({"/tmp/evil": "x"}, {}),
        ({"../evil": "x"}, {}),
        ({"suite/../../evil": "x"}, {}),
        ({}, {"suite/link": ("../../evil", True)}),
        ({}, {"suite/link": ("/etc/passwd", True)}),
        ({}, {"suite/hard": ("../evil", False)}),
    ],
    ids=[
        "absolute",
        "dot-dot",
        "dot-dot-inside",
        "symlink-out",
        "symlink-absolute",
        "hardlink-out",
    ],
)
def test_a_member_landing_or_pointing_outside_is_refused(
    tmp_path: Path, files: dict[str, str], links: dict[str, tuple[str, bool]]
) -> None:
    """Nothing is extracted and no marker is written; the error names the member."""
    archive = _archive(
        tmp_path / "bad.tar", {"suite/a/scenario.yaml": "name: a\n", **files}, links=links
    )
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(errors.ScenarioError, match="refusing to extract"):
        evaluation.extract(archive, cache=cache, progress=_quiet)
    assert not list(cache.glob("datasets/*/" + evaluation.MARKER))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "deep" / "evil").exists()


def test_a_link_inside_the_archive_is_extracted(tmp_path: Path) -> None:
    """A symbolic link to a sibling file stays a link."""
    archive = _archive(
        tmp_path / "ok.tar",
        {"suite/a/scenario.yaml": "name: a\n"},
        links={"suite/b/scenario.yaml": ("../a/scenario.yaml", True)},
    )
    folder = evaluation.extract(archive, cache=tmp_path / "cache", progress=_quiet)
    assert (folder / "suite" / "b" / "scenario.yaml").read_text() == "name: a\n"


def test_an_unreadable_archive_says_what_to_do(tmp_path: Path) -> None:
    """A truncated download is a clear error, not a traceback."""
    whole = _suite(tmp_path / "whole.tar.xz", ["a"]).read_bytes()
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(errors.ScenarioError, match="downloaded whole"):
        evaluation.extract(cut, cache=tmp_path / "cache", progress=_quiet)


def test_datasets_are_named_after_their_path_and_chosen_with_only_and_limit(
    tmp_path: Path,
) -> None:
    """--only globs folder names (repeatable), --limit caps each path; an archive's dataset is
    its stem, a folder's its name."""
    archive = _suite(tmp_path / "nezha-like.tar.xz", ["ob-1", "ob-2", "tt-1", "tt-2"])
    folder = tmp_path / "sockshop"
    for name in ("ss-1", "ss-2"):
        (folder / name).mkdir(parents=True)
        (folder / name / "scenario.yaml").write_text(f"name: {name}\n")
    datasets = evaluation.collect(
        [archive, folder],
        cache=tmp_path / "cache",
        only=["tt-*", "ss-*"],
        limit=1,
        progress=_quiet,
    )
    assert [(d.name, [p.name for p in d.scenarios]) for d in datasets] == [
        ("nezha-like", ["tt-1"]),
        ("sockshop", ["ss-1"]),
    ]
    with pytest.raises(errors.ScenarioError, match="no scenario matches --only nothing-\\*"):
        evaluation.collect([folder], cache=tmp_path / "cache", only=["nothing-*"], progress=_quiet)
