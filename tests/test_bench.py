"""The benchmark harness without timing anything: FLOP counts, the alternating blocks, tables,
results files with one section per machine, the chart, and ``minidl bench --help``."""
import pytest

from minidl import bench
from minidl.cli import main


def test_conv_flops_is_the_direct_count():
    # 2 * N * K * OH * OW * (C / groups) * kh * kw per pass
    assert bench.conv_flops(32, 64, 64, 32, 32, 3, 3) == 2 * 32 * 64 * 32 * 32 * 64 * 9
    assert bench.conv_flops(32, 128, 128, 16, 16, 3, 3, groups=32) == 2 * 32 * 128 * 16 * 16 * 4 * 9
    assert bench.conv_flops(32, 144, 144, 28, 28, 3, 3, groups=144) == 2 * 32 * 144 * 28 * 28 * 9
    assert bench.im2col_gemm_shape(32, 128, 256, 8, 8, 3, 3) == (256, 1152, 32 * 8 * 8)
    assert bench.im2col_gemm_shape(32, 128, 128, 16, 16, 3, 3, groups=32) == (4, 36, 32 * 16 * 16)


def test_conv_cases_carry_their_flops_gemm_and_path():
    convs = {case.name: case.conv for case in bench.cases() if case.conv is not None}
    assert set(convs) == {"conv 3x3", "conv 3x3 stride 2", "conv 1x1", "grouped conv 3x3", "depthwise conv 3x3"}
    # conv 3x3 stride 2: 32x128 -> 256 at 16, output 8x8
    assert convs["conv 3x3 stride 2"]["flops"] == bench.conv_flops(32, 128, 256, 8, 8, 3, 3)
    assert convs["conv 3x3 stride 2"]["gemm"] == (256, 128 * 9, 32 * 8 * 8)
    assert convs["conv 1x1"]["path"] == "pointwise"
    assert convs["depthwise conv 3x3"]["path"] == "direct"
    assert convs["conv 3x3"]["path"] in ("winograd", "gemm")


def test_targets_of_the_performance_issue():
    targets = {case.name: case.target for case in bench.cases()}
    assert targets["conv 3x3"] == targets["conv 3x3 stride 2"] == targets["conv 1x1"] == 1.0
    assert targets["grouped conv 3x3"] == 1.0 and targets["depthwise conv 3x3"] == 0.7
    assert targets["max-pool 3x3 s2 p1"] == targets["NMS"] == 0.5
    assert targets["batch-norm (training)"] == targets["softmax cross-entropy"] == 1.0


def test_alternating_blocks_interleave_the_sides():
    calls = []
    medians = bench.alternating_median_ms([lambda: calls.append("a"), lambda: calls.append("b")],
                                          repeats=6, warmup=1, rounds=3)
    assert len(medians) == 2
    assert "".join(calls) == "a" + "b" + "aabbaabbaabb"  # warm-up, then three rounds of two-call blocks
    calls.clear()
    bench.alternating_median_ms([lambda: calls.append("a"), lambda: calls.append("b")], repeats=2, warmup=0)
    assert "".join(calls) == "abab"  # two repeats: two rounds of one


def _conv_row():
    return {"name": "conv 3x3", "shape": "32x64->64 at 32", "target": 1.0, "forward": (10.0, 20.0, 0.5),
            "forward+backward": (30.0, 40.0, 0.75), "gflop": 7.25, "gflops": (241.7, 181.2), "sgemm": 95.5,
            "gemm": (64, 576, 32768), "path": "winograd"}


def test_table_shows_gflops_for_convolutions_only():
    nms = {"name": "NMS", "shape": "5000 boxes", "target": 0.5, "forward": (20.0, 200.0, 0.1)}
    table = bench.format_table([_conv_row(), nms])
    assert "| minidl GFLOP/s | PyTorch GFLOP/s | SGEMM GFLOP/s |" in table
    assert "| <= 1.0 | yes | 241.7 | 181.2 | 95.5 |" in table
    assert "| <= 0.5 | yes | - | - | - |" in table
    assert "3 passes" in table and "Winograd" in table and "(64, 576) @ (576, 32768)" in table


def test_machine_description_names_cpu_threads_and_blas():
    text = bench.machine_description(2)
    assert text.startswith(f"- CPU: {bench.cpu_model()}")
    assert "logical CPUs" in text and "NumPy" in text and "Numba" in text
    assert "- threads: Numba" in text and "layer" in text
    assert "BLAS" in text
    assert bench.machine_heading().endswith("logical CPUs)")


def test_results_file_keeps_one_section_per_machine():
    amd, intel = "AMD EPYC (2 logical CPUs)", "Intel(R) Xeon(R) Platinum 8481C (4 logical CPUs)"
    text = bench.merge_results(None, "CPU kernels", "How to read.", amd, "amd table v1")
    text = bench.merge_results(text, "CPU kernels", "How to read.", intel, "intel table\n\n### notes\nx")
    text = bench.merge_results(text, "CPU kernels", "How to read, revised.", amd, "amd table v2")
    assert text.startswith("# CPU kernels\n\nHow to read, revised.\n\n## Machine: AMD EPYC")
    assert "amd table v2" in text and "amd table v1" not in text
    assert "intel table\n\n### notes\nx" in text
    assert text.index("## Machine: AMD") < text.index("## Machine: Intel")  # replaced in place
    assert text.count("## Machine: ") == 2


def test_results_file_in_the_earlier_form_becomes_its_machines_section():
    old = ("# CPU models: minidl against PyTorch\n\n- machine: x86_64, Linux, 2 logical CPUs; AMD EPYC\n"
           "- Python 3.11\n\n| model | ratio |\n\n## Reading these numbers\n\nold notes\n")
    intel = "Intel Xeon (4 logical CPUs)"
    text = bench.merge_results(old, "CPU models", "Preamble.", intel, "intel rows")
    assert "## Machine: AMD EPYC (2 logical CPUs)\n\n- machine: x86_64" in text
    assert "### Reading these numbers" in text and "old notes" in text
    assert text.count("# CPU models") == 1
    again = bench.merge_results(text, "CPU models", "Preamble.", "AMD EPYC (2 logical CPUs)", "amd rows")
    assert "old notes" not in again and "amd rows" in again and "intel rows" in again


def test_write_results_merges_the_file(tmp_path):
    path = tmp_path / "cpu-kernels.md"
    path.write_text(bench.merge_results(None, "T", "P", "Other CPU (8 logical CPUs)", "other"))
    bench.write_results(str(path), "T", "P", "this machine's table")
    text = path.read_text()
    assert f"## Machine: {bench.machine_heading()}\n\nthis machine's table" in text
    assert "## Machine: Other CPU (8 logical CPUs)\n\nother" in text


def test_ratio_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = bench.plot_ratios(["a", "b", "c"], [0.5, 2.0, 1.1], [1.0, 1.2, None], str(tmp_path / "r.png"), "title")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_minidl_bench_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--repeats" in out and "--op" in out and "SGEMM" in out
