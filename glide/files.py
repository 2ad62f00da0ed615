"""Writing files so that a failure leaves nothing half-written: the one home of atomic writes.

Every file glide writes goes through `atomic_write` (or `write_text_atomic`): a temporary file beside the
target, renamed over it only once it is complete and closed, and removed on any error, Ctrl-C included. A
reader sees the old file or the new one, never a torn one. Folders are built the same way, in a temporary
folder renamed into place (glide.checkpoint.write_folder, the dataset builders). mkstemp and mkdtemp create
private entries; `public_permissions` gives the result the modes the user's umask asks for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def public_permissions(path: Path) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; give the result the usual umask-based modes."""
    mask = os.umask(0)
    os.umask(mask)
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", suffix: str = ".tmp") -> Iterator[IO]:
    """`with atomic_write(path) as f:` writes to a temporary file beside `path`, which replaces `path` when the
    block ends without an error and is removed when it raises. Text modes write UTF-8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        public_permissions(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the file `src` to `dst` atomically."""
    with open(src, "rb") as fin, atomic_write(dst) as fout:
        shutil.copyfileobj(fin, fout)
    return Path(dst)


def temp_dir_beside(out: Path) -> Path:
    """A fresh folder next to `out` to build it in (then renamed into place), with the umask's modes."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    public_permissions(tmp)
    return tmp
