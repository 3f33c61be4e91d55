"""Unpacking a saved model sent over HTTP (`POST /v1/models/{name}/versions`), safely.

The body is a tar archive (gzip-compressed or not) of a saved model directory: its files at
the archive's root, or inside one top-level folder (`tar -czf model.tgz -C runs/x model`).
Only regular files with plain names are taken — no links, devices, absolute paths or `..` —
and their unpacked size is capped, so an archive cannot write outside the temporary directory
or fill the disk. What is unpacked is then published like any directory: loaded first, in
Keras' safe mode (nothing unpickled), and refused with one line if it cannot serve.

>>> with tempfile.TemporaryDirectory() as tmp:
...     model_dir = unpack_model(body, Path(tmp))
...     version = store.publish(model_dir, "demand")
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from deepcast.errors import ModelFileError

MAX_UNPACKED = 512 * 1024 * 1024  # bytes: far above any saved forecaster, far below a disk
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def unpack_model(body: bytes, into: Path) -> Path:
    """Unpack archive `body` into directory `into`; returns the model directory in it."""
    try:
        archive = tarfile.open(fileobj=io.BytesIO(body), mode="r:*")  # noqa: SIM115 -- closed below
    except (tarfile.TarError, EOFError, OSError):
        raise ModelFileError("upload: not a tar archive (.tar, .tar.gz) of a saved model") from None
    files = {}
    total = 0
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ModelFileError(f"upload: corrupt archive ({exc})") from None
        for member in members:
            parts = [p for p in member.name.split("/") if p not in ("", ".")]
            if member.isdir() and len(parts) <= 1:
                continue
            if not member.isfile() or not 1 <= len(parts) <= 2:
                raise ModelFileError(
                    f"upload: {member.name!r} is not a plain file of the model directory"
                )
            if not all(_FILE.fullmatch(p) and ".." not in p for p in parts):
                raise ModelFileError(f"upload: file name {member.name!r} is not allowed")
            total += member.size
            if total > MAX_UNPACKED:
                raise ModelFileError(f"upload: unpacks to more than {MAX_UNPACKED} bytes")
            files[tuple(parts)] = member
        folders = {parts[0] for parts in files if len(parts) == 2}
        if len(folders) > 1 or (folders and any(len(p) == 1 for p in files)):
            raise ModelFileError("upload: the archive must hold one model directory")
        if not files:
            raise ModelFileError("upload: the archive is empty")
        into.mkdir(parents=True, exist_ok=True)
        for parts, member in files.items():
            source = archive.extractfile(member)
            (into / parts[-1]).write_bytes(source.read())
    return into
