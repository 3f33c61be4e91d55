"""Atomic writes: a result file is either the old one or the complete new one, never half."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp_path)` on a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, data: object) -> Path:
    return write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_figure(path: str | os.PathLike, figure) -> Path:
    """Save a matplotlib figure atomically as PNG."""
    return write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))


def replace_directory(path: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Build a directory in a temporary sibling with `fill(tmp_dir)`, then swap it into place.

    An existing directory at `path` is only removed once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        fill(tmp)
        if not path.exists():
            os.replace(tmp, path)
        elif exchange(tmp, path):
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the old directory
        else:
            # No atomic exchange here: a moment where `path` does not exist. Readers that
            # must never see that (the model store) use new paths and an alias file instead.
            old = path.with_name(f".{path.name}-old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap two existing paths in one step (Linux `renameat2(RENAME_EXCHANGE)`), so neither
    is ever missing. False where the system cannot: the caller falls back to two renames."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if done != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: file system cannot exchange
            return False
        raise OSError(errno, os.strerror(errno), os.fspath(b))
    return True
