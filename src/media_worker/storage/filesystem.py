"""The embedded default: a bucket is a directory under one root, a key a relative path in it.

It behaves like the S3 adapter wherever the contract tests can tell (a missing bucket is an
error, a missing object is OriginalNotFoundError, deleting a missing object is fine), so a
deployment that outgrows one machine changes configuration, not behaviour.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from media_worker.errors import (
    MediaWorkerError,
    ObjectTooLargeError,
    OriginalNotFoundError,
    PermanentError,
    StorageUnavailableError,
)
from media_worker.storage import read_ahead
from media_worker.storage.file_reader import FileRangeSource
from media_worker.storage.reader import ObjectReader

_CHUNK_BYTES = 1024 * 1024
# Writes land in `.mw-tmp-*` first; such names are refused as keys and hidden from listings.
_TEMP_PREFIX = ".mw-tmp-"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
# A folder vanishing under a write is a race with delete() pruning it; trying again fixes it.
_WRITE_TRIES = 3


class FilesystemStorage:
    """ObjectStorage over a local directory, safe for the worker's threads to share.

    Every write goes to a temporary file in the target's folder and is renamed over the key,
    so a reader sees the old object or the new one, never half of one, and a retry simply
    overwrites. `fsync=True` (the default) flushes the data before the rename, so a crash
    cannot leave a READY row pointing at an empty thumbnail.
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self._root = Path(root)
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"FilesystemStorage(root={str(self._root)!r})"

    # --- the port -------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        folder = self._bucket_dir(bucket)
        with _translated("create bucket", bucket):
            folder.mkdir(parents=True, exist_ok=True)

    def check_bucket(self, bucket: str) -> None:
        self._existing_bucket_dir(bucket)

    def size(self, bucket: str, key: str) -> int:
        return self._stat_object(bucket, key).st_size

    def download(self, bucket: str, key: str, destination: Path, *,
                 max_bytes: int | None = None) -> int:
        """Copy in chunks (originals can be large); a failed copy leaves no partial file."""
        source = self._open_object(bucket, key)
        length = os.fstat(source.fileno()).st_size
        if max_bytes is not None and length > max_bytes:
            source.close()
            raise ObjectTooLargeError(length, max_bytes)
        with source, destination.open("wb") as out:
            try:
                with _translated("read", bucket, key):
                    shutil.copyfileobj(source, out, _CHUNK_BYTES)
                return out.tell()
            except BaseException:
                destination.unlink(missing_ok=True)
                raise

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> ObjectReader:
        """The file itself, read where it lies and never cached twice (storage/file_reader.py
        says how a changed file is told)."""
        stream = self._open_object(bucket, key)
        try:
            source = FileRangeSource(stream, self._object_path(bucket, key), f"{bucket}/{key}",
                                     lambda: _translated("read", bucket, key))
        except BaseException:
            stream.close()
            raise
        return ObjectReader(source, name=key, max_read_bytes=max_read_bytes,
                            read_ahead=read_ahead.NONE)

    def upload(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """`content_type` is not stored: the worker sniffs bytes and rows record the type."""
        self._write(bucket, key, lambda out: out.write(data))

    def upload_file(self, bucket: str, key: str, source: Path, content_type: str) -> None:
        with source.open("rb") as stream:
            self._write(bucket, key, lambda out: shutil.copyfileobj(stream, out, _CHUNK_BYTES))

    def read(self, bucket: str, key: str) -> bytes:
        with self._open_object(bucket, key) as stream, _translated("read", bucket, key):
            return stream.read()

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._stat_object(bucket, key)
        except OriginalNotFoundError:
            return False
        return True

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Walk only the folder the prefix implies, not the whole bucket."""
        folder = self._existing_bucket_dir(bucket)
        start = _prefix_folder(folder, prefix)
        if start is None:  # the prefix has a `..` or empty segment: no valid key matches it
            return []
        with _translated("list", bucket):
            return sorted(key for key in _walk_keys(folder, start) if key.startswith(prefix))

    def delete(self, bucket: str, key: str) -> None:
        """Remove the file, then any folders it leaves empty (S3 has no folders to leave)."""
        folder = self._existing_bucket_dir(bucket)
        path = self._object_path(bucket, key)
        with _translated("delete", bucket, key):
            try:
                path.unlink()
            except _MISSING:
                return
        _prune_empty_folders(path.parent, folder)

    def close(self) -> None:
        """Nothing is held open between calls."""

    # --- paths ----------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        if (not bucket or bucket in {".", ".."} or "/" in bucket or "\\" in bucket
                or "\0" in bucket or bucket.startswith(_TEMP_PREFIX)):
            raise PermanentError(f"invalid bucket name {bucket!r}")
        return self._root / bucket

    def _existing_bucket_dir(self, bucket: str) -> Path:
        folder = self._bucket_dir(bucket)
        with _translated("open bucket", bucket):
            if not folder.is_dir():
                raise OriginalNotFoundError(f"bucket {bucket!r} does not exist")
        return folder

    def _object_path(self, bucket: str, key: str) -> Path:
        """The key's file, refusing any key that could name something outside the bucket."""
        parts = key.split("/")
        if "\0" in key or not all(_valid_segment(part) for part in parts):
            raise PermanentError(f"invalid object key {key!r}: it must be a relative path "
                                 "without '..', '.', empty segments or NUL")
        return self._bucket_dir(bucket).joinpath(*parts)

    # --- reads ----------------------------------------------------------------------------
    def _stat_object(self, bucket: str, key: str) -> os.stat_result:
        path = self._object_path(bucket, key)
        with _translated("read", bucket, key, on_missing=lambda: self._not_found(bucket, key)):
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):  # a folder is not an object
                raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        return info

    def _open_object(self, bucket: str, key: str) -> BinaryIO:
        path = self._object_path(bucket, key)
        with _translated("read", bucket, key, on_missing=lambda: self._not_found(bucket, key)):
            return path.open("rb")

    def _not_found(self, bucket: str, key: str) -> OriginalNotFoundError:
        if not self._bucket_dir(bucket).is_dir():
            return OriginalNotFoundError(f"bucket {bucket!r} does not exist")
        return OriginalNotFoundError(f"no object {key!r} in bucket {bucket!r}")

    # --- writes ---------------------------------------------------------------------------
    def _write(self, bucket: str, key: str, fill: Callable[[BinaryIO], object]) -> None:
        """Write through a temporary file and rename it over the key."""
        self._existing_bucket_dir(bucket)
        path = self._object_path(bucket, key)
        with _translated("write", bucket, key):
            try:
                temp = _create_temp_beside(path)
            except (FileExistsError, NotADirectoryError) as exc:
                raise _conflict(bucket, key) from exc
            try:
                self._fill_and_replace(temp, path, fill)
            except IsADirectoryError as exc:
                raise _conflict(bucket, key) from exc
            finally:
                temp.unlink(missing_ok=True)

    def _fill_and_replace(
        self, temp: Path, path: Path, fill: Callable[[BinaryIO], object]
    ) -> None:
        with temp.open("wb") as out:
            fill(out)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        os.replace(temp, path)


def _create_temp_beside(path: Path) -> Path:
    """An empty, fresh file in the key's folder (created as needed). A folder pruned by a
    concurrent delete() between mkdir and open is created again on the next try."""
    for _ in range(_WRITE_TRIES - 1):
        with suppress(FileNotFoundError):
            return _try_create_temp(path)
    return _try_create_temp(path)


def _try_create_temp(path: Path) -> Path:
    """Mode 0666 minus the umask, unlike mkstemp's 0600, so the published object is as
    readable as any other file the worker writes."""
    temp = path.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return temp


def _conflict(bucket: str, key: str) -> PermanentError:
    return PermanentError(
        f"object {key!r} in bucket {bucket!r} clashes with an existing object or folder "
        "(a local directory cannot hold both 'a' and 'a/b')"
    )


@contextmanager
def _translated(
    action: str, bucket: str, key: str | None = None, *,
    on_missing: Callable[[], MediaWorkerError] | None = None,
) -> Iterator[None]:
    """OSError → the worker's taxonomy. With `on_missing`, an absent file (or a name too long
    to ever have been written) is that error; otherwise any OSError means the disk is in
    trouble, not the media (full, read-only, permissions, I/O): transient, bounded by
    MAX_ATTEMPTS."""
    try:
        yield
    except OSError as exc:
        too_long = exc.errno == errno.ENAMETOOLONG
        if on_missing is not None and (too_long or isinstance(exc, _MISSING)):
            raise on_missing() from exc
        if too_long:
            raise PermanentError(f"object key {key!r} is too long for the local disk") from exc
        where = bucket if key is None else f"{bucket}/{key}"
        raise StorageUnavailableError(
            f"local storage {action} {where!r} failed: {exc.strerror or exc}"
        ) from exc


def _valid_segment(part: str) -> bool:
    return part not in {"", ".", ".."} and not part.startswith(_TEMP_PREFIX)


def _prefix_folder(bucket_dir: Path, prefix: str) -> Path | None:
    """The deepest folder every key starting with `prefix` lives in (None: no key can)."""
    head = prefix.rpartition("/")[0]
    if not head:
        return bucket_dir
    parts = head.split("/")
    if "\0" in head or not all(_valid_segment(part) for part in parts):
        return None
    return bucket_dir.joinpath(*parts)


def _walk_keys(bucket_dir: Path, start: Path) -> Iterator[str]:
    for folder, _dirs, files in os.walk(start, onerror=_raise_unless_missing):
        relative = Path(folder).relative_to(bucket_dir)
        for name in files:
            if not name.startswith(_TEMP_PREFIX):
                yield (relative / name).as_posix()


def _raise_unless_missing(exc: OSError) -> None:
    if not isinstance(exc, _MISSING):
        raise exc


def _prune_empty_folders(folder: Path, stop: Path) -> None:
    """Best effort: a folder that is not empty (or just got a new file) stays."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
