"""How the processes of a job find each other before the backend starts: a small object broadcast.

A store's ``broadcast_object(obj)`` returns rank 0's ``obj`` on every rank. NCCL needs it
once, for its unique id; the MPI backend does not (MPI's launcher already connected the ranks).

* :class:`MPIStore` when launched by ``mpiexec``/``srun`` with mpi4py present.
* :class:`TCPStore` for torchrun-style launchers: rank 0 listens on ``MASTER_ADDR:MASTER_PORT``,
  the others connect (PyTorch's ``init_method="env://"``).
* :class:`FileStore` for ``init_method="file:///shared/path"``: rank 0 writes the object to a
  file on a filesystem that every machine sees.
"""
from __future__ import annotations

import os
import pickle
import socket
import struct
import time


class MPIStore:
    def __init__(self, comm):
        self.comm = comm

    def broadcast_object(self, obj):
        return self.comm.bcast(obj, root=0)


def _recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("TCPStore: rank 0 closed the connection early")
        data += chunk
    return data


class TCPStore:
    """Rank 0 serves ``obj`` to ``world_size - 1`` connections; the others retry until ``timeout`` seconds."""

    def __init__(self, host, port, rank, world_size, timeout=300.0):
        self.host, self.port, self.rank, self.world_size, self.timeout = host, int(port), rank, world_size, timeout

    def broadcast_object(self, obj):
        if self.rank == 0:
            payload = pickle.dumps(obj)
            with socket.create_server(("", self.port), reuse_port=False) as server:
                server.settimeout(self.timeout)
                for _ in range(self.world_size - 1):
                    conn, _ = server.accept()
                    with conn:
                        conn.sendall(struct.pack("!Q", len(payload)) + payload)
            return obj
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=self.timeout) as conn:
                    (n,) = struct.unpack("!Q", _recv_exact(conn, 8))
                    return pickle.loads(_recv_exact(conn, n))
            except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"rank {self.rank}: no rank 0 listening at MASTER_ADDR={self.host} "
                                       f"MASTER_PORT={self.port} after {self.timeout:.0f} s") from None
                time.sleep(0.1)


class FileStore:
    """Rank 0 writes ``obj`` to ``path`` (atomically); the others wait for the file."""

    def __init__(self, path, rank, timeout=300.0):
        self.path, self.rank, self.timeout = path, rank, timeout

    def broadcast_object(self, obj):
        if self.rank == 0:
            tmp = f"{self.path}.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                pickle.dump(obj, f)
            os.replace(tmp, self.path)
            return obj
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(self.path):
            if time.monotonic() > deadline:
                raise TimeoutError(f"rank {self.rank}: rank 0 wrote no {self.path} within {self.timeout:.0f} s")
            time.sleep(0.05)
        with open(self.path, "rb") as f:
            return pickle.load(f)
