"""The PyPI long description: README.md with every relative link made absolute.

README.md links to the repository's own files (``docs/…``, ``README.zh-CN.md``); on PyPI those
would be broken, so at build time each relative link target becomes the file on GitHub at this
version's tag (``Repository`` in ``[project.urls]``, ``/blob/v<version>/``). Everything else
is declared in pyproject.toml.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
LINK = re.compile(r"(\]\()(?!https?://|mailto:|#)([^)\s]+)(\))")
"""A markdown link ``](target)`` whose target is relative (not a URL, not an anchor)."""


def version() -> str:
    text = (HERE / "provisioner" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if match is None:
        raise RuntimeError("provisioner/__init__.py has no __version__")
    return match.group(1)


def absolute_links(text: str, base: str) -> str:
    """``text`` with each relative link target prefixed with ``base``."""
    return LINK.sub(
        lambda m: f"{m.group(1)}{base}{m.group(2).removeprefix('./')}{m.group(3)}", text
    )


def long_description() -> str:
    project = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    repository = project["urls"]["Repository"].rstrip("/")
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    return absolute_links(readme, f"{repository}/blob/v{version()}/")


setup(long_description=long_description(), long_description_content_type="text/markdown")
