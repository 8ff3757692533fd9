"""Write docs/pytorch-compat.md: which of PyTorch's public names minidl has, generated from both packages.

    python scripts/torch_compat.py            # rewrite docs/pytorch-compat.md
    python scripts/torch_compat.py --check    # exit 1 when the file is out of date

For each PyTorch namespace below, every public name (no leading underscore) is looked up at
the same place in minidl (``torch.nn.functional.conv2d`` -> ``minidl.nn.functional.conv2d``,
``torch.Tensor.add_`` -> ``minidl.Tensor.add_``). A name is

* **present** when minidl has it there (the tests compare what the present names compute
  with PyTorch; this table only says that the name exists),
* **out of scope** when it belongs to a part of PyTorch that minidl does not set out to
  have (listed in ``OUT_OF_SCOPE`` with the reason), or
* **missing** otherwise.

Nothing here is written by hand except the namespaces and the out-of-scope rules, so the
table cannot claim a name that is not there. Needs torch (a reference tool, like benchmarks/).
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import types

import torch  # noqa: F401  (PyTorch first, as in the benchmarks)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "pytorch-compat.md")

# (title, PyTorch module or class path, minidl path, which names count)
NAMESPACES = [
    ("torch", "torch", "minidl", "all"),
    ("torch.Tensor", "torch.Tensor", "minidl.Tensor", "dir"),
    ("torch.nn.functional", "torch.nn.functional", "minidl.nn.functional", "dir"),
    ("torch.nn (modules)", "torch.nn", "minidl.nn", "classes"),
    ("torch.nn.init", "torch.nn.init", "minidl.nn.init", "dir"),
    ("torch.nn.utils", "torch.nn.utils", "minidl.nn.utils", "functions"),
    ("torch.autograd", "torch.autograd", "minidl.autograd", "all"),
    ("torch.linalg", "torch.linalg", "minidl.linalg", "dir"),
    ("torch.optim", "torch.optim", "minidl.optim", "classes"),
    ("torch.optim.lr_scheduler", "torch.optim.lr_scheduler", "minidl.optim.lr_scheduler", "classes"),
    ("torch.utils.data", "torch.utils.data", "minidl.utils.data", "all"),
]

# Parts of PyTorch minidl does not set out to cover, as (regular expression on the name, reason).
OUT_OF_SCOPE = [
    (r"(^|_)(q|quantize|quantized|dequantize|fake_quantize|q_per|int_repr|fbgemm)", "quantization"),
    (r"sparse|^to_sparse|coalesce|^indices$|^values$|crow_|col_indices|ccol_|row_indices|^smm$|^sspaddmm$|^hspmm$|_coo|_csr|_csc|_bsr|_bsc", "sparse tensors"),
    (r"complex|^real$|^imag$|^angle$|^conj|^polar$|^view_as_real|^resolve_conj|^resolve_neg|^is_conj|^is_neg|^adjoint$|^sgn$", "complex numbers"),
    (r"^fft|^stft$|^istft$|window$", "signal processing"),
    (r"cuda|cudnn|mkldnn|miopen|^mps|^xpu|^ipu|^hpu|^mtia|^vulkan|^xla|^lazy|^privateuse|^is_pinned$|^pin_memory$|nested|^to_padded|^_|mkl|^backends$|^accelerator$|^cpu$|^vmap$|^func$|^export$|^compile|^compiler|^jit|^fx$|^onnx|^package$|^profiler$|^library$|^overrides$|^distributed|^hub$|^testing$|^utils$|^multiprocessing$|^sym|^Sym|^guard|^cond$|^while_loop$|^autocast|^amp$|^masked$|^monitor$|^special$|^storage$|^types$|^version$|^return_types$|^serialization$|^random$|^quasirandom$|^futures$|^ao$|^fx$|^nn$|^optim$|^autograd$|^linalg$|^sparse$|^contrib$|^functional$|^__", "backends, compilers, devices and subpackages"),
    (r"Storage$|^UntypedStorage|^TypedStorage|^storage_|^untyped_storage$|^data_ptr$|^share_memory|^is_shared$|^set_$|^_?storage|^record_stream$|^dlpack|^from_dlpack|^to_dlpack|^frombuffer$|^from_file$|^__dlpack", "storage, memory sharing and interchange"),
    (r"Tensor$", "legacy typed tensor classes (torch.FloatTensor, ...)"),
    (r"_copy$|^native_|^batch_norm_(backward|elemt|gather|stats|update)|^(fork|wait|cpp|parse_ir|parse_schema|parse_type_comment|merge_type_from_type_comment|unify_type_list|import_ir_module.*|set_flush_denormal|has_lapack|has_openmp|has_spectral|is_vulkan_available|init_num_threads|dsmm|hsmm|saddmm|spmm|conv_tbc|norm_except_dim|unsafe_.*|thread_safe_generator|hash_tensor|slice_inverse|nonzero_static|empty_permuted|empty_strided|grid_sampler_\\dd|is_distributed|set_default_tensor_type|set_warn_always|is_warn_always_enabled|.*deterministic.*|float32_matmul_precision|.*num_(interop_)?threads|get_device_module|.*default_device|AVG|SUM|Tag|layout|memory_format|typename|classproperty)$|^(bits|int|uint|float4|float8)[0-9_].*", "TorchScript, internals and aten-level variants"),
    (r"^(ne|eq|le|lt|ge|gt)_$|_$", "in-place variants (counted with their out-of-place op unless listed in torch.Tensor)"),
]

# names of torch.Tensor whose in-place form counts in its own right (everything else ending in _ is in-place)
TENSOR_NAMESPACE = "torch.Tensor"


def _resolve(path):
    module, _, attr = path.partition(":")
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name, None)
        return obj
    return None


# PyTorch's own names in a namespace, not what it imports (typing.Callable, the warnings module, ...)
_KEEP_FROM_C = {"Generator", "Size", "dtype", "device", "Tensor", "finfo", "iinfo"}


def _is_api(obj, name):
    if isinstance(obj, types.ModuleType):
        return False  # subpackages have their own rows
    module = getattr(obj, "__module__", None) or ""
    if module in ("typing", "typing_extensions", "functools", "weakref", "collections.abc", "builtins", "enum"):
        return isinstance(obj, (int, float))  # constants such as torch.pi are numbers
    if isinstance(obj, type) and (module.startswith("torch._C") or type(obj).__name__ == "pybind11_type") \
            and name not in _KEEP_FROM_C:
        return False  # TorchScript's IR and type classes (Graph, Node, ScriptModule, ...), bound from C++
    if module.startswith("torch._jit_internal") or isinstance(obj, (bool, dict)) \
            or (name.isupper() and isinstance(obj, (str, tuple, list, set, frozenset))):
        return False  # TorchScript annotations, flags and lookup tables (TYPE_CHECKING, ...)
    return True


def _names(obj, rule):
    if rule == "all" and hasattr(obj, "__all__"):
        names = list(obj.__all__)
    else:
        names = dir(obj)
    names = [n for n in names if not n.startswith("_") and _is_api(getattr(obj, n, None), n)]
    if rule == "classes":
        names = [n for n in names if isinstance(getattr(obj, n, None), type)]
    if rule == "functions":
        names = [n for n in names if callable(getattr(obj, n, None)) and not isinstance(getattr(obj, n), type)]
    return sorted(set(names))


def _out_of_scope(name, title):
    for pattern, reason in OUT_OF_SCOPE:
        if "in-place" in reason and title == TENSOR_NAMESPACE:
            continue  # the Tensor table lists in-place methods as names of their own
        if re.search(pattern, name):
            return reason
    return None


def survey():
    """[(title, minidl path, present, missing, {reason: [names]})] for every namespace."""
    rows = []
    for title, torch_path, minidl_path, rule in NAMESPACES:
        theirs = _resolve(torch_path)
        ours = _resolve(minidl_path)
        present, missing, skipped = [], [], {}
        for name in _names(theirs, rule):
            if ours is not None and hasattr(ours, name):
                present.append(name)
                continue
            reason = _out_of_scope(name, title)
            if reason:
                skipped.setdefault(reason, []).append(name)
            else:
                missing.append(name)
        rows.append((title, minidl_path, present, missing, skipped))
    return rows


def render(rows):
    import minidl

    lines = [
        "# PyTorch names in minidl",
        "",
        f"Generated by `python scripts/torch_compat.py` from torch {torch.__version__.split('+')[0]} and "
        f"minidl {minidl.__version__ if hasattr(minidl, '__version__') else ''}; do not edit by hand.".replace(" ;", ";"),
        "A name is *present* when minidl defines it at the same place (`torch.nn.functional.X` -> "
        "`minidl.nn.functional.X`); the tests compare what present names compute with PyTorch. "
        "*Out of scope* names belong to parts of PyTorch minidl does not set out to cover (reasons in "
        "the script's `OUT_OF_SCOPE`).",
        "",
        "| PyTorch namespace | minidl | present | missing | out of scope | coverage of the rest |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for title, minidl_path, present, missing, skipped in rows:
        n_skip = sum(len(v) for v in skipped.values())
        share = len(present) / max(1, len(present) + len(missing))
        lines.append(f"| `{title}` | `{minidl_path}` | {len(present)} | {len(missing)} | {n_skip} | {share:.0%} |")
    for title, minidl_path, present, missing, skipped in rows:
        lines += ["", f"## `{title}`", ""]
        lines.append(f"**Present ({len(present)}):** " + (", ".join(f"`{n}`" for n in present) or "none"))
        lines.append("")
        lines.append(f"**Missing ({len(missing)}):** " + (", ".join(f"`{n}`" for n in missing) or "none"))
        for reason, names in sorted(skipped.items()):
            lines.append("")
            lines.append(f"*Out of scope, {reason} ({len(names)}):* " + ", ".join(f"`{n}`" for n in names))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/pytorch-compat.md is out of date")
    args = parser.parse_args(argv)
    text = render(survey())
    if args.check:
        current = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if current != text:
            print(f"{OUT} is out of date: run python scripts/torch_compat.py", file=sys.stderr)
            return 1
        return 0
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
