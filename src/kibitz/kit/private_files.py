"""Data and key files only their owner may read: files 0600, directories 0700.

Everything under the data directory is either a secret (signing keys inside `auth.db`, Fernet
key files) or people's data (chats, documents, vectors), so none of it is readable by other
accounts on the machine. Applied when a file or directory is created and again on start, so a
data directory made by an older version is tightened too.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# SQLite's companions of a database file: it gives them the database file's mode when it
# creates them, but ones left by an older version keep theirs.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> Path:
    """Create `path` (and missing parents) if needed and make it 0700."""
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIRECTORY_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty if missing (its directory 0700) and make it 0600."""
    private_directory(path.parent)
    # O_CREAT with the mode: never a moment when the file exists with a wider one.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)
    return path


def private_sqlite_file(path: str) -> None:
    """Make a SQLite database file (and its -wal/-shm/-journal files, if any) 0600 before it
    is opened; in-memory databases are left alone."""
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    database = Path(path)
    private_file(database)
    for suffix in SQLITE_COMPANIONS:
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            os.chmod(companion, FILE_MODE)
