"""``minidl gradcheck`` that teaches (issue 18 point 4): --verbose, --fn, per-case seeds, the new cases."""
import re

from minidl.cli import main
from minidl.gradcheck_suite import _cases, case_seed, check_case, format_case, run_suite


def _case_lines(out, header):
    """The lines of one case in verbose output: its header line and the indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return lines[start:end]


def test_a_filter_does_not_change_a_cases_numbers(capsys):
    # linear comes before conv2d in the suite: with one generator shared by all cases (as before),
    # running it first would change conv2d's draws
    assert main(["gradcheck", "--op", "conv2d", "--verbose"]) == 0
    out_alone = capsys.readouterr().out
    assert main(["gradcheck", "--op", "linear", "--op", "conv2d", "--verbose"]) == 0
    out_together = capsys.readouterr().out
    cases = dict(_cases())["conv2d"]
    assert len(cases) == 6
    for description, _, _ in cases:
        lines = _case_lines(out_alone, f"conv2d / {description}  inputs ")
        assert len(lines) >= 3 and lines == _case_lines(out_together, f"conv2d / {description}  inputs ")
    assert case_seed("conv2d", "1x1") != case_seed("conv2d", "grouped")
    assert case_seed("a", "b", 5) != case_seed("a", "b")


def test_verbose_prints_every_case_with_shapes_and_errors_per_input(capsys):
    assert main(["gradcheck", "--op", "batch_norm", "--verbose"]) == 0
    out = capsys.readouterr().out
    cases = dict(_cases())["batch_norm"]
    for description, _, shapes in cases:
        lines = _case_lines(out, f"batch_norm / {description}  inputs ")
        assert ", ".join("x".join(map(str, s)) for s in shapes) in lines[0] and lines[0].endswith(": ok")
        assert len(lines) == 1 + len(shapes)  # one line per input: x, weight, bias
        for i, shape in enumerate(shapes):
            shape_text = ", ".join(map(str, shape))
            match = re.match(rf"    input {i} \({shape_text},?\)\s+max abs err (\S+)\s+max rel err (\S+)", lines[1 + i])
            assert match and float(match.group(1)) < 1e-6
    assert "3 cases: all passed" in out


def test_user_function_passes(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.py").write_text("def f(a, b):\n    return (a @ b).tanh() * a.sum()\n")
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "--fn", "mine:f", "--shapes", "2x3,3x4"]) == 0
    out = capsys.readouterr().out
    assert "mine:f  inputs 2x3, 3x4: ok" in out
    assert re.search(r"input 0 \(2, 3\)\s+max abs err", out) and re.search(r"input 1 \(3, 4\)\s+max abs err", out)


def test_a_wrong_backward_shows_the_worst_element(tmp_path, capsys):
    # forward x**2, backward forgets the 2: analytic = numeric / 2 at every element
    (tmp_path / "wrong.py").write_text(
        "from minidl.autograd import Function\n"
        "class Square(Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, x):\n"
        "        ctx.save_for_backward(x)\n"
        "        return x * x\n"
        "    @staticmethod\n"
        "    def backward(ctx, g):\n"
        "        (x,) = ctx.saved_tensors\n"
        "        return g * x\n"
        "def f(x):\n"
        "    return Square.apply(x)\n")
    assert main(["gradcheck", "--fn", f"{tmp_path / 'wrong.py'}:f", "--shapes", "3x4"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    match = re.search(r"worst element \((\d+), (\d+)\): analytic (\S+), numeric (\S+)", out)
    analytic, numeric = float(match.group(3)), float(match.group(4))
    assert abs(numeric - 2 * analytic) < 1e-6 * max(1.0, abs(numeric))
    assert main(["gradcheck", "--fn", "wrong"]) == 2  # no ':function', no --shapes
    assert main(["gradcheck", "--fn", "nowhere:f", "--shapes", "2"]) == 2
    assert "cannot import module 'nowhere'" in capsys.readouterr().err


def test_failing_case_record_names_the_worst_element():
    def half_grad(x):  # y = x * stop(x) + 0: the backward sees only one of the two factors
        from minidl.tensor import Tensor
        return x * Tensor(x.data.copy())

    record = check_case("demo", "x * x with one factor constant", half_grad, [(2, 3)])
    assert not record["passed"]
    item = record["inputs"][0]
    assert abs(item["numeric"] - 2 * item["analytic"]) < 1e-6
    text = format_case(record, verbose=False)
    assert "worst element" in text and "FAILED" in text


def test_roi_ops_are_in_the_suite_and_pass():
    rows = run_suite(only=["roi_align/roi_pool"])
    assert rows == [rows[0]] and rows[0][1] == 3 and rows[0][4]


def test_workers_give_the_same_rows_and_cases_in_the_suites_order():
    """``minidl gradcheck --workers 2``: the ops shared by two processes, the same numbers, the same order."""
    only = ["pow", "matmul", "einsum", "tril/triu"]
    seen = {1: [], 2: []}
    rows = {w: run_suite(only=only, workers=w, on_case=lambda r, w=w: seen[w].append((r["op"], r["case"])))
            for w in (1, 2)}
    assert [r[:5] for r in rows[1]] == [r[:5] for r in rows[2]]  # op, cases, max errors, passed
    assert seen[1] == seen[2] and len(seen[1]) == sum(r[1] for r in rows[1])
