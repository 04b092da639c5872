"""The private on-disk cache of generated code (numba modules and CUDA cubins), and the
atomic file writes it and the checkpoints (:mod:`gpuad.train`) make.

An entry is trusted only if this user wrote it, nobody else can write it, and its content
hashes to the key it was stored under; anything else (a stale entry, a foreign or truncated
file) is rebuilt and replaced atomically, never loaded.
"""
import hashlib
import os
import pathlib
import stat
import uuid


def private_dir(name):
    """``$XDG_CACHE_HOME/gpuad/<name>`` (``~/.cache`` by default), readable by its owner only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = pathlib.Path(base) / "gpuad" / name
    path.mkdir(parents=True, exist_ok=True)
    for private in (path.parent, path):  # whatever the umask: only its owner reads code here
        private.chmod(0o700)
    return path


def key_of(*parts):
    """The hex key of an entry: the SHA-256 of its source and of everything that built it."""
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def trusted(path):
    """Whether ``path`` is a regular file of this user that no one else can write."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def write_atomic(path, write, mode=0o666):
    """Write ``path`` through ``write(file)``: a temporary name created with ``mode`` (less
    the umask), fsync, an atomic rename, then the folder synced.  A reader sees the old file or
    the whole new one; a process killed half-way leaves the old one (checkpoints, the cache)."""
    temporary = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_directory(os.path.dirname(path))


def _fsync_directory(directory):
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:  # a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync a directory: the rename stands
        pass
    finally:
        os.close(fd)


def load_or_build(directory, key, build):
    """The bytes stored under ``key`` in ``directory``, or ``build()``'s, stored there now.

    The file holds the SHA-256 of its payload, then the payload; an entry whose owner,
    permissions or digest are wrong is rebuilt.
    """
    path = pathlib.Path(directory) / key
    if trusted(path):
        data = path.read_bytes()
        digest, payload = data[:64], data[65:]
        if digest == hashlib.sha256(payload).hexdigest().encode() and data[64:65] == b"\n":
            return payload
    payload = build()
    entry = hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    write_atomic(path, lambda f: f.write(entry), mode=0o600)
    return payload
