"""Identity files: a ``PrivateKey`` protobuf on disk, as go-libp2p and ipfs store them.

Writes are atomic (temporary file in the same directory, fsync, rename), so a crash never
leaves a truncated identity behind, and the file is created with mode 0600.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rapidp2p.crypto.keys import PrivateKey
from rapidp2p.crypto.serialization import MAX_KEY_PROTOBUF, private_key_from_protobuf
from rapidp2p.exceptions import KeyError_

FILE_MODE = 0o600


def save_identity(path: str | os.PathLike[str], key: PrivateKey, *, overwrite: bool = True) -> None:
    """Writes ``key`` as a PrivateKey protobuf to ``path`` atomically with mode 0600.

    With ``overwrite=False`` an existing file is never replaced (FileExistsError), even if
    another process creates it concurrently.
    """
    import tempfile

    target = Path(path)
    directory = target.parent
    data = key.to_protobuf()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            # link() fails if the target exists: an atomic create-if-absent.
            os.link(tmp_name, target)
            os.unlink(tmp_name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(directory)


def load_identity(path: str | os.PathLike[str]) -> PrivateKey:
    """Reads and validates an identity file; KeyError_ names the file and the problem."""
    target = Path(path)
    with open(target, "rb") as f:
        data = f.read(MAX_KEY_PROTOBUF + 1)
    if not data:
        raise KeyError_(f"{target}: identity file is empty")
    if len(data) > MAX_KEY_PROTOBUF:
        raise KeyError_(f"{target}: too large to be a libp2p private key")
    try:
        return private_key_from_protobuf(data)
    except KeyError_ as e:
        raise KeyError_(f"{target}: not a valid libp2p private key: {e}") from e


def _fsync_dir(directory: Path) -> None:
    """Makes the rename durable; some filesystems cannot open directories, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
