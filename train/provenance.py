"""Where an artifact came from: the git commit, and JSON written atomically."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from edge_infer.files import write_atomic


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """Current commit, with '-dirty' when the work tree has changes; 'unknown' outside git."""
    cwd = repo or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def write_json_atomic(path: str | os.PathLike, value) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(value, indent=2) + "\n")
