"""The folder name of a project under `GODWIT_HOME` (its sessions and its checkpoint store)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def project_folder(work_tree: Path, *, digest_chars: int) -> str:
    """`<slug>-<hash of the absolute path>`: readable, and distinct for two projects of one name."""
    path = work_tree.resolve()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-")[:40] or "root"
    return f"{slug}-{hashlib.sha256(os.fsencode(str(path))).hexdigest()[:digest_chars]}"
