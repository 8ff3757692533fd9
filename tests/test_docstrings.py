"""Every public layer of minidl.nn, every public function of minidl.nn.functional and every public name
of minidl.ops has its own docstring with a ``>>>`` example and a link to its docs chapter, and those
examples pass (doctest)."""
import doctest
import inspect
import pathlib
import pydoc
import re

import pytest

import minidl.nn as nn
import minidl.nn.functional as F
import minidl.ops as ops

# the chapters of docs/ (the docs conventions of issue 18)
CHAPTERS = {
    "autograd", "linear", "convolution", "grouped_depthwise", "pooling", "batch_norm", "lrn_dropout",
    "activations", "softmax_cross_entropy", "optimizers", "detection_ops", "architectures", "exercises",
    "layer_norm", "attention", "recurrent",
}


def public_layers():
    """(name, class) for every public name of minidl.nn that is a Module subclass."""
    names = getattr(nn, "__all__", None) or [n for n in vars(nn) if not n.startswith("_")]
    return [(n, getattr(nn, n)) for n in sorted(names)
            if inspect.isclass(getattr(nn, n)) and issubclass(getattr(nn, n), nn.Module)]


def public_functions():
    """(name, function) for every public function defined in minidl.nn.functional (not the imported helpers)."""
    return [(n, f) for n, f in sorted(vars(F).items())
            if not n.startswith("_") and inspect.isfunction(f) and f.__module__ == F.__name__]


def public_ops():
    """(name, object) for every public function and class that minidl.ops defines (torchvision.ops' names)."""
    return [(n, o) for n, o in sorted(vars(ops).items())
            if not n.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o))
            and o.__module__.startswith(ops.__name__ + ".")]


def own_doc(obj):
    """The docstring written for ``obj`` itself: a class's inherited docstring does not count."""
    return obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__


OBJECTS = ([("nn." + n, o) for n, o in public_layers()] + [("F." + n, f) for n, f in public_functions()]
           + [("ops." + n, o) for n, o in public_ops()])


def test_the_public_names_are_found():
    names = [n for n, _ in OBJECTS]
    for expected in ("nn.Conv2d", "nn.BatchNorm2d", "nn.ReLU", "nn.ZeroPad2d", "nn.LSTM", "nn.Module",
                     "F.conv2d", "F.max_pool2d", "F.cross_entropy", "F.relu", "ops.nms", "ops.roi_align",
                     "ops.StochasticDepth"):
        assert expected in names
    assert "F.Tensor" not in names and "F.get_array_module" not in names  # imported helpers are not F's own
    assert len(OBJECTS) > 150


def problems(name, obj):
    """What is missing from the docstring of ``obj``: its own text, a >>> example, a docs chapter link."""
    doc = own_doc(obj)
    if not doc or not doc.strip():
        return [f"{name}: no docstring of its own"]
    found = []
    if ">>>" not in doc:
        found.append(f"{name}: no >>> example")
    links = [w.split("docs/")[1].split(".md")[0] for w in doc.split() if "docs/" in w and ".md" in w]
    if not links:
        found.append(f"{name}: no 'See docs/<chapter>.md.' link")
    return found + [f"{name}: docs/{c}.md is not a chapter" for c in links if c not in CHAPTERS]


def run_examples(name, obj, failures):
    """(examples attempted, examples failed) of ``obj``'s docstring, in a fresh namespace."""
    runner = doctest.DocTestRunner(verbose=False)
    for test in doctest.DocTestFinder(recurse=False).find(obj, name, globs={}):
        runner.run(test, out=failures.append)
    return runner.tries, runner.failures


def test_every_public_name_has_a_docstring_with_an_example_and_a_chapter():
    found = [p for name, obj in OBJECTS for p in problems(name, obj)]
    assert not found, "\n".join(found)


def test_the_linked_chapters_exist_once_the_docs_are_written():
    docs = pathlib.Path(__file__).resolve().parents[1] / "docs"
    written = {p.stem for p in docs.glob("*.md")} & CHAPTERS
    if not written:
        pytest.skip("no chapter of docs/ written yet")
    linked = {w.split("docs/")[1].split(".md")[0] for _, obj in OBJECTS for w in own_doc(obj).split()
              if "docs/" in w and ".md" in w}
    assert linked <= CHAPTERS
    assert not linked - written, f"chapters linked from docstrings but missing in docs/: {sorted(linked - written)}"


def test_the_examples_pass():
    """Every object's examples run with doctest (each in a fresh namespace) and print what the docstring shows."""
    failures, without_examples, failed = [], [], 0
    for name, obj in OBJECTS:
        tries, fails = run_examples(name, obj, failures)
        failed += fails
        if tries == 0:
            without_examples.append(name)
    assert not without_examples, f"doctest found no example in {without_examples}"
    assert failed == 0, "".join(failures)


def documented_args(doc):
    """[(names, text)] of the Args section: an entry starts 4 spaces in, its continuation lines deeper."""
    lines = inspect.cleandoc(doc).splitlines()
    if "Args:" not in lines:
        return []
    entries = []
    for line in lines[lines.index("Args:") + 1:]:
        if line and not line.startswith("    "):
            break
        match = re.match(r"    ([\w*][\w*, ]*?)(?: \([^)]*\))?: (.*)", line)
        if match:
            entries.append(([n.strip() for n in match.group(1).split(",")], match.group(2)))
        elif line.startswith("        ") and entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + line.strip())
    return entries


def signature_of(obj):
    """The parameters of a function or of a class's __init__ (without self); None for a ``*args`` signature."""
    params = dict(inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters)
    params.pop("self", None)
    if any(p.kind == p.VAR_POSITIONAL for p in params.values()):
        return None  # the activation and padding layers made by factories: arguments by position
    return {n: p for n, p in params.items() if p.kind != p.VAR_KEYWORD}


def argument_problems(name, obj):
    """(problems, defaults compared): parameters missing from Args, documented defaults that differ."""
    params = signature_of(obj)
    if params is None:
        return [], 0
    entries = documented_args(own_doc(obj))
    documented = {n for names, _ in entries for n in names}
    problems = [f"{name}: parameter {n!r} is not in Args" for n in params if n not in documented]
    compared = 0
    for names, text in entries:
        default = re.search(r"Default: (.+?)(?:\.(?: |$)| \(|$)", text)
        if len(names) != 1 or names[0] not in params or not default:
            continue
        expected = params[names[0]].default
        compared += 1
        if expected is inspect.Parameter.empty or default.group(1).strip() != repr(expected):
            problems.append(f"{name}.{names[0]}: documented default {default.group(1)!r}, signature {expected!r}")
    return problems, compared


def test_the_documented_arguments_and_defaults_match_the_signatures():
    """Every parameter is documented, and a documented "Default: X" is the signature's default."""
    results = [argument_problems(name, obj) for name, obj in OBJECTS]
    assert sum(compared for _, compared in results) > 300
    problems = [p for found, _ in results for p in found]
    assert not problems, "\n".join(problems)


def test_help_shows_the_layer_own_docstring():
    text = pydoc.render_doc(nn.BatchNorm2d, renderer=pydoc.plaintext)
    assert nn.BatchNorm2d.__doc__.strip().splitlines()[0] in text
    assert nn.BatchNorm2d.__doc__ != nn.Module.__doc__
    assert "running" in nn.BatchNorm2d.__doc__ and "momentum" in nn.BatchNorm2d.__doc__


def test_the_checks_catch_what_is_missing_or_wrong():
    class Undocumented(nn.Module):
        pass

    class NoExample(nn.Module):
        """A layer. See docs/linear.md."""

    def wrong(x):
        """Doubles.

        >>> 2 * 2
        5

        See docs/nowhere.md.
        """
        return 2 * x

    # Module's docstring is not its own
    assert problems("Undocumented", Undocumented) == ["Undocumented: no docstring of its own"]
    assert problems("NoExample", NoExample) == ["NoExample: no >>> example"]
    assert problems("wrong", wrong) == ["wrong: docs/nowhere.md is not a chapter"]
    failures = []
    assert run_examples("wrong", wrong, failures) == (1, 1) and "Expected:" in failures[0]
    def stale(input, eps=1e-5, momentum=0.1):
        """A docstring that lags behind its signature.

        Args:
            input (Tensor): x.
            eps (float): Default: 1e-06.
        """

    assert argument_problems("stale", stale) == (["stale: parameter 'momentum' is not in Args",
                                                  "stale.eps: documented default '1e-06', signature 1e-05"], 1)
    assert problems("nn.BatchNorm2d", nn.BatchNorm2d) == []
