"""Writing files so that they are either complete or absent, never half-written.

``atomic_open(path)`` is the one mechanism: it yields a temporary file next to
``path`` and renames it into place only when the block finishes without an
exception; on any exception (also Ctrl-C) the temporary file is removed. The
result gets ordinary permissions (0644 under the usual umask), not the 0600 of
``tempfile``, so an HTML course or a shared weights cache can be read by others.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def set_default_permissions(path: str | os.PathLike) -> None:
    """Give a temporary file the permissions a plain ``open()`` would have: 0o666 minus the
    umask (tempfile makes them 0o600, so others sharing a cache could not read the file)."""
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; move it to ``path`` on success.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8). The folder must exist.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes new files: mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as file:
            yield file
        set_default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically."""
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as file:
        file.write(data)


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB chunks (checkpoints are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
