"""benchmarks/provenance.py: the commit a results file records."""
from __future__ import annotations

import re
import subprocess

import provenance


def test_the_commit_is_head_of_this_checkout_or_unknown_outside_one(monkeypatch, tmp_path):
    commit = provenance.git_commit()
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit) or commit == "unknown"
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)   # a copied tree: no .git
    if subprocess.run(["git", "-C", str(tmp_path), "rev-parse"], capture_output=True).returncode != 0:
        assert provenance.git_commit() == "unknown"
