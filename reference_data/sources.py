"""Where reference data comes from: a local file or an S3 object, behind one small interface.

Each source has a cheap ``version()`` (a change token: file identity/mtime/size, or the S3 ETag) so that
polling costs one ``stat``/``HEAD`` per interval, and ``open()`` which streams the bytes in chunks
(so a 200 MB file is never held whole in memory) together with the version of what is being read.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ReferenceDataError

DEFAULT_CHUNK_BYTES = 1 << 20
ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")


class Snapshot(AbstractContextManager["Snapshot"]):
    """One read of a source: its version token and an iterator of byte chunks.

    Use as a context manager so the file handle or HTTP stream is closed even if parsing fails.
    """

    def __init__(self, version: str, chunks: Iterator[bytes]) -> None:
        self.version = version
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Source(ABC):
    """A place reference data is read from."""

    location: str

    @abstractmethod
    def version(self) -> str:
        """A token that changes whenever the content may have changed; raises ReferenceDataError."""

    @abstractmethod
    def open(self) -> Snapshot:
        """Start reading; the snapshot's version is that of the bytes it yields."""

    def read_bytes(self) -> tuple[str, bytes]:
        """(version, whole content); convenient for small files and tests."""
        with self.open() as snap:
            return snap.version, b"".join(snap)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


class EmptySource(Source):
    """No reference data configured: an empty table, so every event joins to (null, null)."""

    location = ""

    def version(self) -> str:
        return "empty"

    def open(self) -> Snapshot:
        return Snapshot("empty", iter(()))


class LocalFileSource(Source):
    """A file on local disk.

    The version is ``"<inode>:<mtime_ns>:<size>"``: mtime and size catch edits, the inode catches a file
    replaced by rename (the safe way to publish a new version) even when the replacement keeps an old
    mtime (``mv``/``cp -p`` of a backup).
    """

    def __init__(self, path: str | os.PathLike[str], chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.path = os.fspath(path)
        self.location = self.path
        self.chunk_bytes = chunk_bytes

    @staticmethod
    def _token(st: os.stat_result) -> str:
        return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"

    def _error(self, exc: OSError) -> ReferenceDataError:
        if isinstance(exc, FileNotFoundError):
            return ReferenceDataError(f"reference data file not found: {self.path}")
        if isinstance(exc, IsADirectoryError):
            return ReferenceDataError(f"reference data path is a directory, not a file: {self.path}")
        if isinstance(exc, PermissionError):
            return ReferenceDataError(f"no permission to read reference data file: {self.path}")
        return ReferenceDataError(f"cannot read reference data file {self.path}: {exc}")

    def version(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise self._error(exc) from exc
        if not stat.S_ISREG(st.st_mode):
            raise ReferenceDataError(f"reference data path is not a regular file: {self.path}")
        return self._token(st)

    def open(self) -> Snapshot:
        try:
            f = open(self.path, "rb")  # closed by the _read generator (or just below)
        except OSError as exc:
            raise self._error(exc) from exc
        try:
            st = os.fstat(f.fileno())
        except OSError as exc:
            f.close()
            raise self._error(exc) from exc
        return Snapshot(self._token(st), self._read(f, st))

    def _read(self, f: Any, before: os.stat_result) -> Iterator[bytes]:
        with f:
            try:
                while chunk := f.read(self.chunk_bytes):
                    yield chunk
                after = os.fstat(f.fileno())
            except OSError as exc:
                raise self._error(exc) from exc
        # Someone writing the file in place while we read it: what we read may be half old, half new.
        if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
            raise ReferenceDataError(
                f"reference data file {self.path} changed while being read; write a temporary file "
                "and rename it over the old one to publish atomically"
            )


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key); ReferenceDataError if either part is missing.

    Not urlsplit: object keys may legitimately contain '?', '#' and '//'.
    """
    if url[:5].lower() != "s3://":
        raise ReferenceDataError(f"not an S3 URL (expected s3://bucket/key): {url!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ReferenceDataError(f"not an S3 object URL (expected s3://bucket/key): {url!r}")
    return bucket, key


class S3Source(Source):
    """An S3 (or S3-compatible: MinIO, moto, ...) object; the version is its ETag.

    The endpoint comes from ``endpoint_url``, else ``AWS_ENDPOINT_URL`` or ``S3_ENDPOINT_URL``, else
    AWS itself. Credentials and region come from the usual boto3 chain (env, profile, instance role).
    """

    def __init__(
        self,
        url: str,
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        client: Any = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        self.location = url
        self.bucket, self.key = parse_s3_url(url)
        if endpoint_url is None:
            endpoint_url = next((os.environ[v] for v in ENDPOINT_ENV_VARS if os.environ.get(v)), None)
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self.chunk_bytes = chunk_bytes
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 client, created on first use (creation is slow, and tests may inject one)."""
        if self._client is None:
            import boto3  # imported lazily: only S3 users pay for it

            session = boto3.session.Session()  # own session: the default one is not thread-safe
            self._client = session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region_name)
        return self._client

    def _error(self, exc: Exception) -> ReferenceDataError:
        where = self.location + (f" (endpoint {self.endpoint_url})" if self.endpoint_url else "")
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            error = response.get("Error", {})
            code = str(error.get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("404", "NoSuchKey", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                return ReferenceDataError(f"reference data object not found: {where}")
            if code == "NoSuchBucket":
                return ReferenceDataError(f"reference data bucket {self.bucket!r} does not exist: {where}")
            if code in ("403", "AccessDenied", "Forbidden"):
                return ReferenceDataError(f"access denied to reference data object: {where}")
            return ReferenceDataError(f"cannot read reference data {where}: {code or status}: {exc}")
        return ReferenceDataError(f"cannot read reference data {where}: {type(exc).__name__}: {exc}")

    def version(self) -> str:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:  # botocore raises many unrelated types; all mean "cannot read"
            raise self._error(exc) from exc
        return str(head["ETag"]).strip('"')

    def open(self) -> Snapshot:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            raise self._error(exc) from exc
        return Snapshot(str(obj["ETag"]).strip('"'), self._read(obj["Body"]))

    def _read(self, body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(self.chunk_bytes)
        except Exception as exc:
            raise self._error(exc) from exc
        finally:
            body.close()


def open_source(location: str | os.PathLike[str] | None) -> Source:
    """The source for a location: ``s3://bucket/key``, ``file:///path``, a plain path, or empty/None."""
    if location is None:
        return EmptySource()
    loc = os.fspath(location).strip()
    if not loc:
        return EmptySource()
    if loc[:5].lower() == "s3://":
        return S3Source(loc)
    if loc[:7].lower() == "file://":
        return LocalFileSource(unquote(urlsplit(loc).path))
    if "://" in loc:
        raise ReferenceDataError(f"unsupported reference data location (use a path or s3://): {loc!r}")
    return LocalFileSource(loc)
