"""The scans and photos of materials handed in through the intake app, kept in the village's
home (``scans/``, readable by the agent's account only) under their SHA-256: the case records
each material's name, SHA-256 and size, and the file it names is here, kept once however often
it is handed in. A scan is on disk (written whole, flushed) before the case that names it is
recorded."""

import hashlib
import os
import secrets
from pathlib import Path

SCANS = "scans"


def keep(home: Path, data: bytes) -> Path:
    """The kept file holding ``data`` (written now unless it already is)."""
    folder = home / SCANS
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / hashlib.sha256(data).hexdigest()
    if path.exists():
        return path
    temporary = folder / f"{path.name}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path
