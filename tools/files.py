"""Atomic file writes for every file the course tools rewrite.

``notebooks/`` is the only copy of the solutions, so a write that fails half-way (a full
disk, a killed process, a file-size limit) must leave the old file as it was. The new
text goes to a temporary file in the same folder, is flushed to disk, and replaces the
old file with ``os.replace`` (atomic on POSIX and Windows); on any failure the temporary
file is removed and the old file is untouched.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_text(folder / "a.txt", "new")
>>> (folder / "a.txt").read_text()
'new'
>>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
['a.txt']
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path``'s content with ``text`` atomically (keeping its permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
