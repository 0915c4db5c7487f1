"""The release artifacts, built as the release workflow builds them: the sdist and the wheel
from the release lock's ``build`` (``--no-isolation``, hash-pinned), then

- the wheel's metadata: the LICENSE file, the project URLs and classifiers, a long
  description whose links all work on PyPI (absolute);
- the sdist's contents: the tests with every fixture, the docs, the changelog, both READMEs;
- the sdist's own tests: unpacked into a temporary folder, without its ``provisioner/``
  source (so the tests import the installed wheel), a subset of them runs in a fresh virtual
  environment with the wheel and the hash-pinned locks of the sdist.

One virtual environment serves both steps, to keep the cost modest (it runs in CI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
LOCKS = REPO / "requirements"
SUBSET = (
    "tests/test_validate.py",
    "tests/test_cli_validate.py",
    "tests/test_render_plan.py",
    "tests/test_cli_plan.py",
    "tests/test_readme.py",
    "tests/test_cli_completion.py",
)
"""The sdist's tests that run: the broken-manifest fixtures with their exact messages, plan
rendering fixtures, plan end to end on the embedded emulator, the READMEs, completion through
the installed console script."""
BUILD_TOOLS = {"build", "pyproject-hooks", "packaging", "setuptools", "colorama"}
TEST_TOOLS = {"pytest", "pytest-timeout", "iniconfig", "pluggy", "hypothesis", "sortedcontainers"}
NOT_NEEDED = {"psycopg", "psycopg-binary", "tzdata"}
"""Of main.lock: the postgres extra, which no test of the subset uses."""
ENTRY = re.compile(r"^([a-z0-9][a-z0-9._-]*)==", re.M)
RELATIVE_LINK = re.compile(r"\]\((?!https?://|mailto:|#)[^)]*\)")


def lock_entries(lock: str) -> dict[str, str]:
    """Each pin of ``lock`` (name → its lines: the pin, its markers and hashes)."""
    text = (LOCKS / lock).read_text(encoding="utf-8")
    matches = list(ENTRY.finditer(text))
    ends = [match.start() for match in matches[1:]] + [len(text)]
    return {
        match.group(1): text[match.start() : end] for match, end in zip(matches, ends, strict=True)
    }


def requirements() -> str:
    """The hashed pins of the one environment: build tools, the runtime, the test tools."""
    release, main, dev = (
        lock_entries("release.lock"),
        lock_entries("main.lock"),
        lock_entries("dev.lock"),
    )
    chosen = {name: release[name] for name in BUILD_TOOLS}
    chosen |= {name: block for name, block in main.items() if name not in NOT_NEEDED}
    chosen |= {name: dev[name] for name in TEST_TOOLS}
    return "".join(chosen.values())


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def source_tree(target: Path) -> Path:
    """The checkout as git sees it (tracked and new files, nothing ignored), copied."""
    listed = run("git", "ls-files", "-z", "-co", "--exclude-standard", cwd=REPO)
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not (REPO / ".git").exists(), reason="builds from a git checkout")
def test_the_sdist_and_wheel_build_and_the_sdists_tests_pass(tmp_path: Path) -> None:
    venv, dist, unpacked = tmp_path / "venv", tmp_path / "dist", tmp_path / "unpacked"
    bin_dir = venv / "bin"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    (tmp_path / "requirements.txt").write_text(requirements(), encoding="utf-8")
    pip = (bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check")
    run(*pip, "--require-hashes", "-r", tmp_path / "requirements.txt", cwd=tmp_path)
    src = source_tree(tmp_path / "src")
    run(bin_dir / "python", "-m", "build", "--no-isolation", "--outdir", dist, src, cwd=tmp_path)
    (sdist,), (wheel,) = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode("utf-8"))
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "[中文说明 (Chinese)](https://github.com/" in description
    assert RELATIVE_LINK.findall(description) == []

    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (root,) = unpacked.iterdir()
    for name in ("LICENSE", "CHANGELOG.md", "README.md", "README.zh-CN.md", "docs/state.md"):
        assert (root / name).is_file(), name
    fixtures = sorted(
        p.relative_to(REPO) for p in (REPO / "tests/fixtures").rglob("*") if p.is_file()
    )
    assert (
        sorted(p.relative_to(root) for p in (root / "tests/fixtures").rglob("*") if p.is_file())
        == fixtures
    )

    shutil.rmtree(root / "provisioner")  # the tests import the installed wheel, nothing else
    run(*pip, "--no-deps", wheel, cwd=tmp_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVISIONER")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    out = run(
        bin_dir / "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "not random_json",
        *SUBSET,
        cwd=root,
        env=env,
    )
    assert re.search(r"\d+ passed", out) and "failed" not in out


def test_the_release_publishes_with_attestations() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/release.yml").read_text("utf-8"))
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    (step,) = [s for s in publish["steps"] if s["uses"].startswith("pypa/gh-action-pypi-publish@")]
    assert re.fullmatch(r"pypa/gh-action-pypi-publish@[0-9a-f]{40}", step["uses"])
    assert step["with"]["attestations"] is True
    text = (REPO / ".github/workflows/release.yml").read_text("utf-8")
    version = re.search(rf"{step['uses']} # v(\d+)\.(\d+)", text)
    assert version and (int(version[1]), int(version[2])) >= (1, 11)  # PEP 740 from v1.11
