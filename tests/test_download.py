"""Downloads against a local HTTP server: verification, corruption, resume, retry, mirrors."""

import gzip
import hashlib
import http.server
import os
import socket
import tarfile
import threading
import zipfile

import numpy as np
import pytest

from minidl.datasets import CIFAR10, MNIST, ChecksumError, DownloadError, download_url, extract_archive, get_cache_dir
from minidl.datasets.download import download_from_mirrors


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes) with optional Range support.

    ``server.drop_after``: name -> number of bytes after which the *first* GET of that
    file closes the socket (a connection dropped mid-transfer).
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        if name not in server.files:
            self.send_error(404)
            return
        body = server.files[name]
        start = 0
        range_header = self.headers.get("Range")
        if range_header and server.ranges:
            start = int(range_header.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        cut = server.drop_after.pop(name, None)
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.daemon_threads = True
    httpd.files, httpd.requests, httpd.drop_after, httpd.ranges = {}, [], {}, True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


PAYLOAD = bytes(np.random.default_rng(1).integers(0, 256, size=300_000, dtype=np.uint8))


def test_good_file_verifies_and_is_reused(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    path = download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert path == str(tmp_path / "a.bin")
    assert open(path, "rb").read() == PAYLOAD and not os.path.exists(path + ".part")
    # a second call finds the verified file and does not ask the server again
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD).upper(), progress=False)
    assert len(server.requests) == 1


def test_corrupt_file_is_deleted_and_reported(server, tmp_path):
    server.files["a.bin"] = PAYLOAD[:-1] + b"\x00"
    with pytest.raises(ChecksumError, match=r"SHA-256 mismatch for a\.bin.*deleted"):
        download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert os.listdir(tmp_path) == []
    # a stale local copy with the wrong digest is replaced, not trusted
    server.files["a.bin"] = PAYLOAD
    (tmp_path / "a.bin").write_bytes(b"stale")
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_resume_partial_file_with_range(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:123_456])
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert server.requests == [("a.bin", "bytes=123456-")]


def test_server_without_range_restarts_from_zero(server, tmp_path):
    server.ranges = False
    server.files["a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(b"garbage that must not be kept")
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_dropped_connection_is_retried_and_resumed(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.drop_after["a.bin"] = 100_000
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False, backoff=0.01)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert len(server.requests) == 2 and server.requests[1][1] is not None
    assert int(server.requests[1][1].split("=")[1].rstrip("-")) >= 1  # resumed, not restarted


def test_retries_are_bounded(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download_url(f"http://127.0.0.1:{port}/x.bin", tmp_path, sha256="0" * 64, retries=2, backoff=0.01,
                     timeout=2, progress=False)


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download_url(server.url + "missing.bin", tmp_path, sha256="0" * 64, progress=False, backoff=0.01)
    assert len(server.requests) == 1


def test_mirrors_fall_through_to_a_good_one(server, tmp_path):
    server.files["good/a.bin"] = PAYLOAD
    server.files["bad/a.bin"] = b"corrupt"
    path = download_from_mirrors([server.url + "nothere/", server.url + "bad/", server.url + "good/"],
                                 "a.bin", tmp_path, sha256(PAYLOAD), progress=False)
    assert open(path, "rb").read() == PAYLOAD


def test_cache_dir_from_env(monkeypatch, tmp_path, server):
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path / "home"))
    assert get_cache_dir() == str(tmp_path / "home")
    server.files["c.bin"] = b"cached"
    path = download_url(server.url + "c.bin", sha256=sha256(b"cached"), progress=False)
    assert path == str(tmp_path / "home" / "c.bin")
    monkeypatch.delenv("MINIDL_HOME")
    assert get_cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "minidl")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="64 hex digits"):
        download_url("http://127.0.0.1/x", tmp_path, sha256="abc")
    with pytest.raises(ValueError, match="retries"):
        download_url("http://127.0.0.1/x", tmp_path, sha256="0" * 64, retries=-1)


def test_extract_archive_refuses_path_traversal(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../escaped.txt", "x")
    with pytest.raises(ValueError, match="outside"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    tar_path = tmp_path / "link.tar"
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="not a regular file"):
        extract_archive(tar_path, tmp_path / "out2")


# ------------------------------------------------------------- readers end to end

def idx(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    return gzip.compress(header + array.tobytes())


def test_mnist_download_end_to_end(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 5, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    files = {name: idx(a) for name, a in arrays.items()}
    server.files.update({"mnist/" + n: b for n, b in files.items()})
    monkeypatch.setattr(MNIST, "mirrors", [server.url + "down/", server.url + "mnist/"])
    monkeypatch.setattr(MNIST, "resources", [(n, sha256(b)) for n, b in files.items()])
    ds = MNIST(tmp_path, train=True, download=True)
    np.testing.assert_array_equal(ds.data, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(ds.targets, arrays["train-labels-idx1-ubyte.gz"])
    # the published files, each with the record of its verification (<file>.verified)
    assert sorted(os.listdir(tmp_path / "MNIST" / "raw")) == sorted([*files, *(n + ".verified" for n in files)])
    n_requests = len(server.requests)
    test = MNIST(tmp_path, train=False, download=True)  # present: nothing fetched again
    assert len(server.requests) == n_requests and len(test) == 3
    # the real published checksums are refused for these stand-in files
    monkeypatch.setattr(MNIST, "resources", [("train-images-idx3-ubyte.gz", "0" * 64)])
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        MNIST(tmp_path / "other", download=True)


def test_cifar_download_end_to_end(server, tmp_path, monkeypatch):
    import pickle

    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    rng = np.random.default_rng(3)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 9]}
        (src / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    archive = tmp_path / "src" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    server.files["kriz/cifar-10-python.tar.gz"] = archive.read_bytes()
    monkeypatch.setattr(CIFAR10, "mirrors", [server.url + "kriz/"])
    monkeypatch.setattr(CIFAR10, "sha256", sha256(archive.read_bytes()))
    ds = CIFAR10(tmp_path / "root", train=False, download=True)
    np.testing.assert_array_equal(ds.data, batches["test_batch"][b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert (tmp_path / "root" / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_gtsrb_download_fixed_training_zip(server, tmp_path, monkeypatch):
    import io

    from PIL import Image

    from minidl.datasets import GTSRB

    pixels = np.random.default_rng(4).integers(0, 256, (21, 23, 3), dtype=np.uint8)
    ppm = io.BytesIO()
    Image.fromarray(pixels).save(ppm, format="PPM")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:  # torchvision's GTSRB-Training_fixed.zip layout
        for class_id in (0, 2):
            folder = f"GTSRB/Training/{class_id:05d}/"
            z.writestr(folder + "00000_00000.ppm", ppm.getvalue())
            z.writestr(folder + f"GT-{class_id:05d}.csv",
                       "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
                       f"00000_00000.ppm;23;21;5;5;18;16;{class_id}\n")
    data = buffer.getvalue()
    server.files["gtsrb/GTSRB-Training_fixed.zip"] = data
    monkeypatch.setattr(GTSRB, "mirrors", [server.url + "gtsrb/"])
    monkeypatch.setattr(GTSRB, "resources", {"train": [("GTSRB-Training_fixed.zip", sha256(data))]})
    ds = GTSRB(tmp_path, split="train", download=True, crop_roi=True, transform=np.asarray)
    assert ds.targets == [0, 2] and (tmp_path / "gtsrb" / "GTSRB" / "Training" / "00002").is_dir()
    np.testing.assert_array_equal(ds[1][0], pixels[5:16, 5:18])


# ------------------------------------------------------------- a SHA-256 is required; files on disk verified once


def test_download_url_without_sha256_is_refused_before_any_request(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    with pytest.raises(TypeError, match=r"sha256=None, trust=True"):
        download_url(server.url + "a.bin", tmp_path, progress=False)
    with pytest.raises(TypeError, match="sha256"):
        download_url(server.url + "a.bin", tmp_path, sha256=None, trust=False, progress=False)
    assert server.requests == [] and os.listdir(tmp_path) == []


def test_download_url_with_sha256_none_and_trust_true_downloads_unverified(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    path = download_url(server.url + "a.bin", tmp_path, sha256=None, trust=True, progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert not os.path.exists(path + ".verified")  # nothing was verified, nothing is recorded


def test_trust_does_not_switch_off_a_given_sha256(server, tmp_path):
    server.files["a.bin"] = b"not the published bytes"
    with pytest.raises(ChecksumError):
        download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), trust=True, progress=False)


def test_checksum_error_is_a_dataset_format_error_naming_the_file(server, tmp_path):
    from minidl.errors import DatasetFormatError

    server.files["a.bin"] = b"corrupt"
    with pytest.raises(DatasetFormatError) as info:
        download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert isinstance(info.value, ValueError) and info.value.path == str(tmp_path / "a.bin")


def _count_hashing(monkeypatch):
    from minidl.datasets import download as dl

    calls = []
    real = dl.sha256sum

    def counting(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dl, "sha256sum", counting)
    return calls


def test_verify_file_hashes_once_and_records_hash_size_and_mtime(tmp_path, monkeypatch):
    import json

    from minidl.datasets import verify_file

    calls = _count_hashing(monkeypatch)
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(PAYLOAD)
    assert verify_file(path, sha256(PAYLOAD)) == str(path)
    record = json.loads((tmp_path / "archive.tar.gz.verified").read_text())
    stat = os.stat(path)
    assert record == {"sha256": sha256(PAYLOAD), "size": len(PAYLOAD), "mtime_ns": stat.st_mtime_ns}
    for _ in range(3):
        verify_file(path, sha256(PAYLOAD).upper())
    assert len(calls) == 1  # the record answers the later calls


def test_verify_file_rehashes_a_file_changed_since_its_record(tmp_path, monkeypatch):
    from minidl.datasets import verify_file

    calls = _count_hashing(monkeypatch)
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(PAYLOAD)
    verify_file(path, sha256(PAYLOAD))
    tampered = bytearray(PAYLOAD)
    tampered[1000] ^= 0xFF  # same size, different bytes, a later mtime
    path.write_bytes(bytes(tampered))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    with pytest.raises(ChecksumError, match=r"archive\.tar\.gz: SHA-256 mismatch"):
        verify_file(path, sha256(PAYLOAD))
    assert len(calls) == 2 and path.exists()  # re-hashed; the user's file is left where it is


def test_verify_file_does_not_trust_a_record_for_another_hash(tmp_path):
    from minidl.datasets import verify_file

    path = tmp_path / "a.bin"
    path.write_bytes(PAYLOAD)
    verify_file(path, sha256(PAYLOAD))
    with pytest.raises(ChecksumError):
        verify_file(path, sha256(b"something else"))
    (tmp_path / "a.bin.verified").write_text("{not json")  # a damaged record is ignored
    assert verify_file(path, sha256(PAYLOAD)) == str(path)


def test_a_file_already_on_disk_is_verified_once_then_reused_by_download_url(server, tmp_path, monkeypatch):
    calls = _count_hashing(monkeypatch)
    (tmp_path / "a.bin").write_bytes(PAYLOAD)  # put there by the user: never downloaded
    for _ in range(3):
        download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert server.requests == [] and len(calls) == 1


def test_a_downloaded_file_is_recorded_as_verified_and_not_hashed_again(server, tmp_path, monkeypatch):
    server.files["a.bin"] = PAYLOAD
    calls = _count_hashing(monkeypatch)
    path = download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert len(calls) == 1 and len(server.requests) == 1 and os.path.exists(path + ".verified")


def test_a_corrupted_cached_archive_is_fetched_again_despite_its_old_record(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    path = download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    with open(path, "r+b") as f:  # bit rot after the verification
        f.seek(10)
        f.write(b"\x00\x01\x02")
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    download_url(server.url + "a.bin", tmp_path, sha256=sha256(PAYLOAD), progress=False)
    assert open(path, "rb").read() == PAYLOAD and len(server.requests) == 2
