"""Writing files and folders so that a reader never sees half of one.

Every result the suite keeps goes through here: the data is written to a temporary sibling
whose name carries the writer's process id and a random token (so two processes writing the
same file never share a temporary), flushed, optionally fsynced, and renamed into place.
``os.replace`` is atomic on POSIX and Windows within one file system, which a sibling
guarantees. A process killed mid-write leaves only its temporary behind; the next run
removes those of dead processes with :func:`sweep_stale_temporaries`.

Why by hand: the standard library has ``tempfile`` and ``os.replace`` but no helper that
names temporaries by owner, and the usual packages (``atomicwrites``) are unmaintained.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

# ".<name>.<pid>-<token>.tmp": hidden, and the owner's pid is readable for the sweep (the
# token is optional so that the ".<name>.<pid>.tmp" temporaries of older versions are swept too).
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:-(?P<token>[0-9a-f]{8}))?\.tmp$")


def temporary_sibling(path: Path) -> Path:
    """A fresh, unique temporary name next to ``path`` (same directory, so renames are atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success it replaces ``path``.

    For writers that want a file name (``safetensors.torch.save_file``, ``np.savez``,
    ``DataFrame.to_csv``). On any exception the temporary is removed and ``path`` is untouched.
    ``durable`` fsyncs the file before the rename, for results that must survive a power loss.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, durable: bool = False) -> None:
    with atomic_path(path, durable) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, durable: bool = False) -> None:
    # newline="" keeps the text's own line endings (CSV writers choose theirs).
    with atomic_path(path, durable) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, value, durable: bool = False, **dump_options) -> None:
    options = {"indent": 1, "sort_keys": True, **dump_options}
    write_text_atomic(path, json.dumps(value, **options) + "\n", durable)


def link_atomic(source: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Make ``dest`` show ``source``: a hard link where the file system allows, else a copy."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


@contextmanager
def atomic_folder(folder: str | os.PathLike, finished: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty temporary sibling folder; on success it replaces ``folder`` whole.

    A killed build leaves only the temporary folder, which is never mistaken for a finished
    one and is swept by the next run. ``finished`` says whether a folder already in place is
    the same work done (by another process that built it meanwhile, e.g. three lab processes
    reaching one uncached network together): such a folder is kept and this build dropped, so
    a finished folder another process may be reading is never deleted under it. Without it,
    or when it says no, whatever is in place is replaced.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_sibling(folder)
    partial.mkdir()
    try:
        yield partial
        try:
            # Renaming onto a missing (or empty) folder is atomic; onto a full one it fails,
            # which is when another writer may have got there first.
            os.replace(partial, folder)
        except OSError:
            if finished is not None and finished(folder):
                return
            shutil.rmtree(folder)
            os.replace(partial, folder)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


def sweep_stale_temporaries(root: str | os.PathLike, recursive: bool = True) -> int:
    """Remove the temporaries of processes that no longer run under ``root``; return how many.

    A temporary of a live process (another run writing beside this one) is left alone.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    removed = 0
    entries = root.rglob(".*.tmp") if recursive else root.glob(".*.tmp")
    for entry in list(entries):
        match = _TEMP_RE.match(entry.name)
        if match is None or _process_alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # directories cannot be opened on every platform; the file itself is synced
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
