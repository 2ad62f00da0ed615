"""Fetching the pinned npm packages (artwork and CLDR names) into a download cache, safely unpacked."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ...errors import GlideError


def safe_extract(tar_path: Path, dest: Path) -> None:
    """Extract a tarball, refusing absolute paths, '..' and links (an archive must not write outside dest)."""
    dest = Path(dest)
    with tarfile.open(tar_path) as tf:
        members = tf.getmembers()
        for m in members:
            parts = Path(m.name).parts
            if m.name.startswith(("/", "\\")) or Path(m.name).is_absolute() or ".." in parts:
                raise GlideError(f"refusing unsafe path {m.name!r} in {tar_path}")
            if not (m.isfile() or m.isdir()):
                raise GlideError(f"refusing link or special file {m.name!r} in {tar_path}")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # belt and braces
        tf.extractall(dest, members=members, **kwargs)


def fetch_npm(package: str, version: str, work_dir: Path) -> Path:
    """The unpacked `package/` folder of an npm tarball, fetched once with `npm pack` and cached."""
    dest = work_dir / f"{package.replace('@', '').replace('/', '-')}-{version}"
    if dest.is_dir():  # only ever created by the rename below, so it is complete
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise GlideError("npm is needed once to download the emoji packages (Debian: apt-get install npm)")
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".fetch-") as tmp:
        r = subprocess.run([npm, "pack", f"{package}@{version}", "--pack-destination", tmp],
                           capture_output=True, text=True, check=False)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if r.returncode != 0 or len(tarballs) != 1:
            msg = (r.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise GlideError(f"npm pack {package}@{version} failed: {msg}")
        safe_extract(tarballs[0], Path(tmp) / "x")
        os.replace(Path(tmp) / "x" / "package", dest)
    return dest


def default_work_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "glide" / "emoji-src"
