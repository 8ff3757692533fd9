"""Verified downloads into a local cache, and safe archive extraction.

``download_url`` streams a file over HTTP(S) into ``root`` (default: the minidl
cache, ``$MINIDL_HOME`` or ``~/.cache/minidl``):

1. bytes go to ``<file>.part`` with a tqdm progress bar;
2. a ``.part`` left by an interrupted run is resumed with an HTTP ``Range``
   request; a server that ignores ``Range`` (answers 200) restarts it from zero;
3. connection errors (dropped sockets, timeouts, 5xx answers) are retried a bounded
   number of times, each retry resuming where the last one stopped;
4. the finished file's SHA-256 is checked *before* it is renamed into place; on a
   mismatch the file is deleted and ``ChecksumError`` says so.

A SHA-256 is required: ``download_url(url)`` without one is a TypeError, and downloading
unverified bytes takes an explicit ``sha256=None, trust=True``.

Files already on disk (an archive the user put there, or one an earlier run fetched) are
checked by :func:`verify_file` before they are first read: the file is hashed once and the
result is recorded next to it in ``<file>.verified`` (a small JSON file with the hash, the
file's size and its modification time in nanoseconds), so later runs only ``stat`` the file;
a file whose size or mtime changed since is hashed again.

Only the standard library is used (``urllib``), so the engine needs no HTTP client.

Example::

    >>> from minidl.datasets.download import download_url
    >>> path = download_url("https://example.org/file.bin", root="/tmp/cache",
    ...                     sha256="0123...")                    # doctest: +SKIP
"""

import hashlib
import http.client
import json
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile

from tqdm import tqdm

from minidl.errors import DatasetFormatError

__all__ = [
    "ChecksumError",
    "DownloadError",
    "get_cache_dir",
    "sha256sum",
    "check_sha256",
    "verify_file",
    "is_verified",
    "download_url",
    "extract_archive",
    "download_from_mirrors",
]

CHUNK_SIZE = 1 << 16  # 64 KiB per read: small enough for a smooth bar, large enough to be cheap
USER_AGENT = "minidl-downloader/0.1"


class ChecksumError(DatasetFormatError):
    """A downloaded or cached file does not have the expected SHA-256 (a ValueError naming the file)."""


class DownloadError(OSError):
    """A file could not be fetched (after the allowed retries, from every mirror)."""


def get_cache_dir():
    """Return the cache folder: ``$MINIDL_HOME`` if set, else ``~/.cache/minidl``.

    The variable is read when a download is asked for (never inside training), so
    setting it in a script before calling a reader is enough.
    """
    home = os.environ.get("MINIDL_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    return os.path.join(os.path.expanduser("~"), ".cache", "minidl")


def sha256sum(path, chunk_size=1 << 20):
    """Hex SHA-256 of a file, read in 1 MiB chunks so big archives need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path, sha256):
    """True if ``path`` exists and (when ``sha256`` is given) has that digest."""
    if not os.path.isfile(path):
        return False
    if sha256 is None:
        return True
    return sha256sum(path) == sha256.lower()


def _validate_sha256(sha256):
    if sha256 is None:
        return None
    if not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a hex string or None, got {type(sha256).__name__}")
    value = sha256.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return value


VERIFIED_SUFFIX = ".verified"


def _verified_record(path):
    """The record :func:`verify_file` keeps for ``path``: ``{"sha256", "size", "mtime_ns"}``, or None."""
    try:
        with open(path + VERIFIED_SUFFIX, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None  # absent, unreadable or malformed: verify again
    return record if isinstance(record, dict) else None


def _write_verified_record(path, sha256, stat):
    """Record that ``path`` (as ``stat`` saw it) has ``sha256``; best effort (a read-only folder only costs a re-hash)."""
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    target = path + VERIFIED_SUFFIX
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, target)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def is_verified(path, sha256):
    """True when ``<path>.verified`` records ``sha256`` for the file as it is now (same size and mtime)."""
    sha256 = _validate_sha256(sha256)
    try:
        stat = os.stat(path)
    except OSError:
        return False
    record = _verified_record(path)
    return record == {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def verify_file(path, sha256):
    """Check that the file ``path`` has the SHA-256 ``sha256`` (once), and return ``path``.

    The first call hashes the file and, when it matches, records the hash with the file's size
    and mtime in ``<path>.verified``; later calls find the record and only ``stat`` the file. A
    file changed since (other size or mtime) is hashed again. Raises :class:`ChecksumError`
    (a ValueError naming the file) on a mismatch, leaving the file where it is.
    """
    path = os.fspath(path)
    expected = _validate_sha256(sha256)
    if expected is None:
        raise TypeError(f"verify_file({path!r}): sha256 must be the file's 64-hex-digit SHA-256, got None")
    stat = os.stat(path)
    if _verified_record(path) == {"sha256": expected, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
        return path
    actual = sha256sum(path)
    if actual != expected:
        raise ChecksumError(
            path, f"SHA-256 mismatch: expected {expected}, got {actual}; the file is corrupt or not the published "
                  "one: delete it and download it again")
    _write_verified_record(path, expected, stat)
    return path


def _remove_quietly(path):
    for name in (path, path + VERIFIED_SUFFIX):
        try:
            os.remove(name)
        except FileNotFoundError:
            pass


def _is_retryable(error):
    """Connection trouble is worth another try; a 404 or 403 is not."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code == 429
    return isinstance(
        error,
        (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException),
    )


def _fetch_into_part(url, part_path, timeout, progress, desc):
    """One attempt: append the rest of ``url`` to ``part_path``. Raises on any failure.

    If ``part_path`` already holds ``k`` bytes we ask for ``Range: bytes=k-``; a 206
    answer whose ``Content-Range`` starts at ``k`` is appended, anything else (a 200
    from a server without range support) rewrites the file from the start.
    """
    offset = os.path.getsize(part_path) if os.path.exists(part_path) else 0
    headers = {"User-Agent": USER_AGENT}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset > 0:
            # Range not satisfiable: the .part is as long as (or longer than) the file.
            # Keep it; the checksum decides whether it is the whole file.
            error.close()
            return
        raise
    with response:
        resumed = offset > 0 and response.status == 206
        if resumed:
            content_range = response.headers.get("Content-Range", "")
            # "bytes 100-999/1000": the server must continue exactly where we stopped,
            # else the body is some other slice; drop the .part and start over.
            if not content_range.startswith(f"bytes {offset}-"):
                os.remove(part_path)
                raise ConnectionError(f"{url} answered range {content_range!r} to a request from byte {offset}")
        else:
            offset = 0  # a 200 answer is the whole file: rewrite the .part from the start
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if resumed else "wb"
        with open(part_path, mode) as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=not progress, leave=False,
        ) as bar:
            received = 0
            while True:
                block = response.read(CHUNK_SIZE)
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received < int(length):
            # The server closed early: keep what arrived and let the caller retry.
            raise http.client.IncompleteRead(b"", int(length) - received)


def download_url(url, root=None, filename=None, sha256=None, *, trust=False, retries=3, timeout=30.0,
                 backoff=0.5, progress=True):
    """Download ``url`` into ``root`` and return the local path, verified by SHA-256.

    Args:
        url: http(s) or file URL.
        root: destination folder; ``None`` means :func:`get_cache_dir`.
        filename: local file name; default is the last path component of ``url``.
        sha256: expected hex digest (required). A file already present with this
            digest is reused without a download (checked once, then recorded by
            :func:`verify_file`); a present file with another digest is replaced.
        trust: with ``sha256=None``, download (or reuse) the file unverified. Without
            it, a missing ``sha256`` is a TypeError: nothing is fetched unchecked by accident.
        retries: extra attempts after a connection error (bounded; 0 = one try).
        timeout: socket timeout in seconds for each attempt.
        backoff: seconds to wait before retry ``i`` is ``backoff * 2**i``.
        progress: show a tqdm bar on stderr.

    Raises:
        ChecksumError: the downloaded bytes do not match ``sha256`` (file deleted).
        DownloadError: the server refused, or every attempt failed.
    """
    if not isinstance(url, str) or not url:
        raise TypeError(f"url must be a non-empty string, got {url!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    sha256 = _validate_sha256(sha256)
    if sha256 is None and trust is not True:
        raise TypeError(
            f"download_url({url!r}) needs the file's sha256=...; to download it unverified, "
            "pass sha256=None, trust=True explicitly")
    root = get_cache_dir() if root is None else os.fspath(root)
    filename = filename or os.path.basename(url.split("?", 1)[0].rstrip("/"))
    if not filename:
        raise ValueError(f"cannot derive a file name from url {url!r}; pass filename=")
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, filename)
    part_path = path + ".part"

    if os.path.isfile(path):
        if sha256 is None:
            return path  # trust=True: reuse whatever is there
        try:
            return verify_file(path, sha256)
        except ChecksumError:
            # A stale or damaged copy: fetch it again rather than trust it.
            _remove_quietly(path)

    last_error = None
    for attempt in range(retries + 1):
        try:
            _fetch_into_part(url, part_path, timeout, progress, desc=filename)
            break
        except Exception as error:  # noqa: BLE001 - filtered right below
            if not _is_retryable(error):
                raise DownloadError(f"downloading {url} failed: {error}") from error
            last_error = error
            if attempt < retries:
                time.sleep(backoff * (2 ** attempt))
    else:
        raise DownloadError(
            f"downloading {url} failed after {retries + 1} attempts: {last_error}; "
            f"the partial file {part_path} is kept and the next call resumes it"
        ) from last_error

    if sha256 is not None:
        actual = sha256sum(part_path)
        if actual != sha256:
            os.remove(part_path)
            raise ChecksumError(
                path, f"SHA-256 mismatch for {filename} downloaded from {url}: expected {sha256}, "
                      f"got {actual}. The corrupt file was deleted; try again or use another mirror."
            )
    os.replace(part_path, path)  # atomic: a reader never sees a half-written file
    if sha256 is not None:
        _write_verified_record(path, sha256, os.stat(path))  # just hashed: later reads need not
    return path


def _safe_target(dest, member_name):
    """Join ``member_name`` under ``dest`` and refuse names that escape it (../, absolute)."""
    dest = os.path.realpath(dest)
    target = os.path.realpath(os.path.join(dest, member_name))
    if os.path.commonpath([dest, target]) != dest:
        raise ValueError(f"archive member {member_name!r} would be written outside {dest}; refusing to extract")
    return target


def extract_archive(path, dest=None):
    """Extract a .tar/.tar.gz/.tgz or .zip archive into ``dest`` (default: its folder).

    Only regular files and folders are written, and only inside ``dest``: links,
    devices and members with ``..`` or absolute paths are refused, so a hostile
    archive cannot overwrite files elsewhere. Returns ``dest``.
    """
    dest = os.path.dirname(os.path.abspath(path)) if dest is None else os.fspath(dest)
    os.makedirs(dest, exist_ok=True)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                target = _safe_target(dest, info.filename)
                if info.is_dir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        return dest
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            for member in archive:
                target = _safe_target(dest, member.name)
                if member.isdir():
                    os.makedirs(target, exist_ok=True)
                elif member.isfile():
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with archive.extractfile(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:
                    raise ValueError(f"archive {path} holds {member.name!r}, which is not a regular file; refusing")
        return dest
    raise ValueError(
        f"{path} is neither a tar nor a zip archive (corrupt or wrong format); delete it and download again"
    )


def download_from_mirrors(mirrors, filename, root, sha256, *, progress=True, **kwargs):
    """Try ``mirror + filename`` for each mirror in turn; return the verified path.

    ``sha256`` is required as in :func:`download_url` (``None`` only with ``trust=True``).

    A mirror that cannot be reached, or serves bytes with the wrong SHA-256, is
    skipped; if none works, ``DownloadError`` lists what each one answered.
    """
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            return download_url(url, root, filename=filename, sha256=sha256, progress=progress, **kwargs)
        except (DownloadError, ChecksumError) as error:
            failures.append(f"  {url}: {error}")
    raise DownloadError(f"could not download {filename} from any mirror:\n" + "\n".join(failures))
