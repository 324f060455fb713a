"""Fill the krew manifest template with a release's version, archive URLs and checksums.

    python deploy/krew/render.py --version v0.1.0 --homepage URL --base-url URL ARCHIVE...

Each archive's name says its platform (``kubectl-diagnose_linux_amd64.tar.gz``); its sha256 is
computed from the file itself. The filled manifest goes to stdout. It refuses (exit 2) a
version that is not ``vMAJOR.MINOR.PATCH``, a URL that is not https, an archive whose platform
the template does not list, and a template placeholder left unfilled.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("diagnose.yaml")
_PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
_SEMVER = re.compile(r"^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_ARCHIVE = re.compile(r"^kubectl-diagnose_(?P<os>[a-z]+)_(?P<arch>[a-z0-9]+)\.(?:tar\.gz|zip)$")


class RenderError(ValueError):
    """The release inputs do not fill the template correctly."""


def render(
    template: str, *, version: str, homepage: str, base_url: str, archives: list[Path]
) -> str:
    """The manifest with every placeholder filled; raises :class:`RenderError` otherwise."""
    if not _SEMVER.match(version):
        raise RenderError(f"version {version!r}: krew wants a semantic version like v0.1.0")
    for url in (homepage, base_url):
        if not url.startswith("https://"):
            raise RenderError(f"{url!r}: krew downloads over https only")
    values = {"VERSION": version, "HOMEPAGE": homepage}
    for archive in archives:
        found = _ARCHIVE.match(archive.name)
        if not found:
            raise RenderError(f"{archive.name}: name it kubectl-diagnose_OS_ARCH.tar.gz")
        platform = f"{found['os']}_{found['arch']}".upper()
        if f"{{{{URI_{platform}}}}}" not in template:
            raise RenderError(f"{archive.name}: the template has no {platform.lower()} platform")
        values[f"URI_{platform}"] = f"{base_url.rstrip('/')}/{archive.name}"
        values[f"SHA256_{platform}"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise RenderError("no value for " + ", ".join(missing) + ": give every platform's archive")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--homepage", required=True)
    parser.add_argument("--base-url", required=True, help="where the archives are published")
    parser.add_argument("archives", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        print(
            render(
                TEMPLATE.read_text(),
                version=args.version,
                homepage=args.homepage,
                base_url=args.base_url,
                archives=args.archives,
            ),
            end="",
        )
    except (RenderError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
