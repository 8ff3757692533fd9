"""Pictures of the graph (issue 18 point 5): ``minidl.autograd.to_dot`` and ``minidl graph``."""
import os
import re
import stat

import numpy as np

import minidl
from minidl import nn
from minidl.autograd import to_dot
from minidl.cli import main


def _parse(dot):
    """(labels by node id, edges as (from, to, attributes)) of DOT text as to_dot writes it."""
    assert dot.startswith("digraph minidl {") and dot.rstrip().endswith("}")
    labels = dict(re.findall(r'^\s+(\w+) \[label="((?:[^"\\]|\\.)*)"', dot, re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+)(?: \[(.*)\])?;$", dot, re.M)
    return labels, edges


def _by_label(labels, text):
    found = [node for node, label in labels.items() if label.split("\\n")[0] == text]
    assert len(found) == 1, (text, labels)
    return found[0]


def test_a_small_expression_has_the_expected_nodes_and_edges():
    a = minidl.tensor(np.ones((2, 3)), requires_grad=True)
    b = minidl.tensor(np.full((2, 3), 2.0), requires_grad=True)
    c = minidl.tensor(np.arange(3.0))  # a constant
    out = (a * b + c).sum()
    labels, edges = _parse(to_dot(out, params={"a": a, "b": b}))
    ops = {node: label.split("\\n")[0] for node, label in labels.items() if node.startswith("f")}
    assert sorted(ops.values()) == ["Add", "Mul", "Sum"]
    mul, add, total = (_by_label(labels, name) for name in ("Mul", "Add", "Sum"))
    node_a, node_b = _by_label(labels, "a"), _by_label(labels, "b")
    assert labels[node_a] == "a\\n(2, 3) float64"
    node_c = _by_label(labels, "(3,) float64")
    root = _by_label(labels, "() float64")
    product = next(t for f, t, _ in edges if f == mul)
    plus = next(t for f, t, _ in edges if f == add)
    assert labels[product] == labels[plus] == "(2, 3) float64"
    expected = {(node_a, mul), (node_b, mul), (mul, product), (product, add), (node_c, add), (add, plus),
                (plus, total), (total, root)}
    assert {(f, t) for f, t, _ in edges} == expected and len(edges) == len(expected)
    assert "saves x0, x1" in labels[mul]  # Mul keeps both inputs for its backward
    assert len(labels) == 3 + 6  # 3 ops, 6 tensors: a, b, c, a*b, a*b+c, the sum


def test_saved_arrays_parameters_and_gradients():
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
    x = minidl.randn(1, 1, 6, 6)
    out = model(x).sum()
    out.backward(retain_graph=True)
    labels, edges = _parse(to_dot(out, show_grad=True, params=dict(model.named_parameters())))
    weight = _by_label(labels, "0.weight")
    g = model[0].weight.grad.numpy().astype(np.float64)
    summary = f"grad: mean {g.mean():.4g}, max|g| {np.abs(g).max():.4g}"
    assert labels[weight] == f"0.weight\\n(2, 1, 3, 3) float32\\n{summary}"
    pool = _by_label(labels, "MaxPool2d")
    saved = [f for f, t, attrs in edges if t == pool and attrs == "style=dashed"]
    assert [labels[s] for s in saved] == ["saved (1, 2, 2, 2) int64"]  # the argmax indices
    assert "saves output" in labels[_by_label(labels, "ReLU")]
    out2 = model(x).sum()
    out2.backward()  # no retain_graph: the inputs of the ops are freed
    assert "freed by backward" in to_dot(out2)


def test_cli_writes_dot_text_without_graphviz(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot on the PATH
    target = tmp_path / "graph.svg"
    assert main(["graph", "lenet5", "--input", "2x1x32x32", "-o", str(target)]) == 0
    captured = capsys.readouterr()
    assert "apt install graphviz" in captured.err and "conda install graphviz" in captured.err
    labels, edges = _parse((tmp_path / "graph.dot").read_text())
    assert not target.exists()
    assert sum(label.startswith("Conv2d") for label in labels.values()) == 2
    assert _by_label(labels, "conv1.weight") and "(2, 10) float32" in labels.values()


def test_cli_renders_with_dot_when_present(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"  # stands in for Graphviz: records its arguments and copies the DOT text
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat > "$3"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "graph.png"
    assert main(["graph", "lenet5", "-o", str(target)]) == 0
    assert (tmp_path / "args").read_text().split() == ["-Tpng", "-o", str(target)]
    assert target.read_text().startswith("digraph minidl {")
    assert "wrote lenet5's graph" in capsys.readouterr().out
    assert main(["graph", "no_such_model"]) == 2
