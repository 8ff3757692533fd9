"""The engine's floors, checked on the source: no import circle, and no import goes up a floor.

Every ``import`` statement of the installed package counts, at module level or inside a
function (imports of optional third-party packages such as cupy, matplotlib or torch are not
minidl's and are not followed). ARCHITECTURE.md draws the same table for readers; this test is
its executable form: a new module must be given a floor here.
"""
import ast
import os
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bottom to top. A module imports only from its own floor or the floors below it.
FLOORS = [
    ("kernels", ["minidl.kernels"]),
    ("functions", ["minidl.backend", "minidl.compilation", "minidl.errors", "minidl.grad_mode", "minidl.profiler",
                   "minidl.random", "minidl.device", "minidl.functions"]),
    ("tensor", ["minidl.tensor", "minidl.autograd", "minidl.creation", "minidl.tensor_functions", "minidl.linalg",
                "minidl.gradcheck", "minidl.cuda", "minidl.graphviz", "minidl.distributed"]),
    ("functional", ["minidl.nn.functional"]),
    ("modules", ["minidl.nn", "minidl.optim", "minidl.ops"]),  # ops: torchvision.ops has modules
    ("applications", ["minidl.models", "minidl.data", "minidl.datasets", "minidl.detection", "minidl.train",
                      "minidl.transfer", "minidl.lr_finder",
                      "minidl.metrics", "minidl.metrics_detection", "minidl.summary", "minidl.serialization",
                      "minidl.weights", "minidl.gradcheck_suite", "minidl.plot", "minidl.bench",
                      "minidl.utils", "minidl.explain"]),
    # the top: the command line, and minidl/__init__.py, the public facade over everything (the CLI may
    # use it as a user's script does; nothing below may)
    ("top", ["minidl.cli", "minidl"]),
]


def _package_dirs():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        mapped = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {"minidl": "minidl", **mapped}


def _modules():
    """Installed module name -> (source path, is a package)."""
    modules = {}
    for package, folder in _package_dirs().items():
        base = os.path.join(ROOT, folder)
        for dirpath, _, files in os.walk(base):
            if "__pycache__" in dirpath:
                continue
            for name in files:
                if not name.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), base)[:-3].replace(os.sep, ".")
                is_package = rel == "__init__" or rel.endswith(".__init__")
                rel = rel[: -len("__init__")].rstrip(".") if is_package else rel
                modules[package + ("." + rel if rel else "")] = (os.path.join(dirpath, name), is_package)
    return modules


MODULES = _modules()


def _resolve(name):
    """The longest known module that ``name`` (a module or a module.attribute) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module):
    """(line, imported module) for every minidl import in ``module``'s source."""
    path, is_package = MODULES[module]
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                origin = base + ("." + node.module if node.module else "")
            else:
                origin = node.module or ""
            names = [origin + "." + alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "minidl" or name.startswith("minidl."):
                target = _resolve(name)
                if target and target != module:
                    found.append((node.lineno, target))
    return found


def floor_of(module):
    """Index in FLOORS of the longest prefix that names ``module``."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


GRAPH = {module: _imports(module) for module in MODULES}


def test_every_module_has_a_floor():
    missing = sorted(m for m in MODULES if floor_of(m) is None)
    assert not missing, f"give these modules a floor in FLOORS (tests/test_architecture.py): {missing}"


def test_no_import_goes_up_a_floor():
    upward = []
    for module, imports in GRAPH.items():
        for line, target in imports:
            if floor_of(target) > floor_of(module):
                upward.append(f"{MODULES[module][0].replace(ROOT + os.sep, '')}:{line}: {module} "
                              f"({FLOORS[floor_of(module)][0]}) imports {target} ({FLOORS[floor_of(target)][0]})")
    assert not upward, "imports that go up a floor:\n" + "\n".join(upward)


def _cycles():
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    edges = {m: sorted({t for _, t in imports}) for m, imports in GRAPH.items()}
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(edges[node])):
                target = edges[node][j]
                if target not in index:
                    work.append((node, j + 1))
                    work.append((target, 0))
                    recurse = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def test_no_import_circles():
    assert _cycles() == []


def test_the_checker_sees_a_circle_and_an_upward_import(monkeypatch):
    """The checks above are not vacuous: a planted circle and an upward edge are found."""
    monkeypatch.setitem(GRAPH, "minidl.tensor", GRAPH["minidl.tensor"] + [(1, "minidl.nn.functional")])
    assert any("minidl.tensor" in c and "minidl.nn.functional" in c for c in _cycles())
    with pytest.raises(AssertionError, match="minidl.tensor \\(tensor\\) imports minidl.nn.functional"):
        test_no_import_goes_up_a_floor()


def test_detection_and_ops_reach_kernels_only_through_the_dispatcher():
    """Application code never names a kernels module: GPU arrays must reach kernels/cuda."""
    offenders = [f"{m} imports {t}" for m, imports in GRAPH.items() for _, t in imports
                 if t.startswith("minidl.kernels") and floor_of(m) >= floor_of("minidl.models")
                 and not m.startswith(("minidl.bench", "minidl.cli.bench", "minidl.explain"))
                 and not (m == "minidl" and t == "minidl.kernels.allocator")]
    # the facade configures the process's allocator once at import (kernels/allocator.py): no kernel call
    # minidl.explain shows the reference kernels step by step on tiny NumPy inputs: naming them is its job
    assert not offenders, offenders
