"""The built-in suite behind ``minidl gradcheck`` passes for every op, and the CLI prints its table."""
from minidl.cli import main
from minidl.gradcheck_suite import format_table, run_suite


def test_every_op_passes_gradcheck():
    rows = run_suite()
    failed = [row[0] for row in rows if not row[4]]
    assert not failed, format_table(rows)
    assert len(rows) >= 30 and sum(row[1] for row in rows) >= 70


def test_cli_prints_table(capsys):
    assert main(["gradcheck", "--op", "conv2d", "--op", "max_pool2d"]) == 0
    out = capsys.readouterr().out
    assert "conv2d" in out and "max_pool2d" in out and "all passed" in out
    assert "max abs err" in out
