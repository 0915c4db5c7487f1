"""Real git for the tests: a bare repository as ``origin`` and clones standing in for laptops
and CI runners; a pre-receive hook that refuses pushes stands in for branch protection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
REJECT_FLAG = "reject-state-pushes"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def make_origin(root: Path) -> Path:
    """``root/origin.git``: a bare repository whose main branch has one commit."""
    origin = root / "origin.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(origin))
    seed = root / "seed"
    git(root, "clone", "-q", str(origin), str(seed))
    (seed / "README.md").write_text("manifests\n", encoding="utf-8")
    git(seed, "add", "README.md")
    git(seed, "commit", "-q", "-m", "init")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return origin


def make_clone(origin: Path, path: Path) -> Path:
    git(path.parent, "clone", "-q", str(origin), str(path))
    return path


def install_rejecting_hook(origin: Path) -> Path:
    """A pre-receive hook refusing every push that changes an app's state file while the
    flag file ``origin/reject-state-pushes`` exists (lock records still go through).
    Returns the flag's path: create it to start refusing, remove it to stop."""
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        f"if not Path({str(origin / REJECT_FLAG)!r}).exists():\n"
        "    sys.exit(0)\n"
        "for line in sys.stdin:\n"
        "    old, new, ref = line.split()\n"
        "    if set(old) == {'0'}:\n"
        "        args = ['ls-tree', '-r', '--name-only', new]\n"
        "    else:\n"
        "        args = ['diff', '--name-only', old, new]\n"
        "    names = subprocess.run(['git', *args], capture_output=True, text=True).stdout\n"
        "    if any(not n.startswith('locks/') for n in names.split()):\n"
        "        print('branch protection: state pushes are not allowed here')\n"
        "        sys.exit(1)\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return origin / REJECT_FLAG


def install_holding_hook(origin: Path) -> Path:
    """A pre-receive hook that holds every push changing an app's state file while the flag
    file ``origin/hold-state-pushes`` exists (lock records still go through), so that a
    test can stop a run between recording a write locally and pushing it. Returns the
    flag's path: create it to start holding, remove it to let the pushes through."""
    flag = origin / "hold-state-pushes"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys, time\n"
        "from pathlib import Path\n"
        "for line in sys.stdin:\n"
        "    old, new, ref = line.split()\n"
        "    if set(old) == {'0'}:\n"
        "        args = ['ls-tree', '-r', '--name-only', new]\n"
        "    else:\n"
        "        args = ['diff', '--name-only', old, new]\n"
        "    names = subprocess.run(['git', *args], capture_output=True, text=True).stdout\n"
        "    while any(not n.startswith('locks/') for n in names.split())"
        f" and Path({str(flag)!r}).exists():\n"
        "        time.sleep(0.01)\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return flag


def branch_file(origin: Path, path: str, branch: str = "provisioner-state") -> str | None:
    result = subprocess.run(
        ["git", "--git-dir", str(origin), "show", f"{branch}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None
