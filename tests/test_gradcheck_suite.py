"""The built-in suite behind ``minidl gradcheck`` passes for every op, and the CLI prints its table."""
import importlib
import inspect
import pkgutil

from minidl.cli import main
from minidl.functions.function import Function
from minidl.gradcheck_suite import format_table, run_suite
from minidl.profiler import profile


def test_every_op_passes_gradcheck():
    with profile() as prof:  # which Functions' backward the suite runs
        rows = run_suite()
    failed = [row[0] for row in rows if not row[4]]
    assert not failed, format_table(rows)
    assert len(rows) >= 30 and sum(row[1] for row in rows) >= 70
    # every differentiable Function of minidl/functions has a case (issue 18): a new op must join the suite
    checked = {cls for cls, phase in prof.ops if phase == "backward"}
    missing = sorted(f"{cls.__module__}.{cls.__name__}" for cls in _differentiable_functions() if cls not in checked)
    assert not missing, f"no gradcheck case in minidl/gradcheck_suite.py runs the backward of {missing}"


def _differentiable_functions():
    """The Function subclasses of minidl.functions that define their own backward."""
    import minidl.functions as package

    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"minidl.functions.{info.name}")
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function
                    and obj.__module__ == module.__name__
                    and "backward" in vars(obj)):
                found.add(obj)
    return found


def test_cli_prints_table(capsys):
    assert main(["gradcheck", "--op", "conv2d", "--op", "max_pool2d"]) == 0
    out = capsys.readouterr().out
    assert "conv2d" in out and "max_pool2d" in out and "all passed" in out
    assert "max abs err" in out
