from evostyle.bench import main, profile, quality, throughput


def test_throughput_row_on_cpu():
    import torch
    r = throughput(32, 2, "fp32", False, False, 4, torch.device("cpu"))
    assert r["ms_per_image_step"] > 0 and r["image_steps_per_s"] > 0 and r["note"] == ""


def test_bench_cli_prints_table(tmp_path, capsys):
    assert main(["--sizes", "32", "--batches", "1", "--steps", "4", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| size | batch | precision" in out and "ms/image-step" in out
    assert (tmp_path / "bench.json").is_file() and (tmp_path / "bench.md").is_file()


def test_quality_compares_bf16_with_fp32_on_cpu():
    import torch
    q = quality(32, 4, 2, "bf16", torch.device("cpu"))
    for term in ("style", "content", "total"):
        assert q[term]["fp32_mean"] > 0 and q[term]["bf16_mean"] > 0
        assert 0 < q[term]["rel_diff_max"] < 0.1  # bf16 differs from fp32, but not by much


def test_profile_lists_the_convolutions():
    import torch
    table = profile(32, 2, "fp32", 2, torch.device("cpu"))
    assert "convolution" in table


def test_end_to_end_race_runs_the_same_budget_on_both_sides():
    from evostyle.bench import end_to_end
    e = end_to_end(32, 2, 5, 1, 2, "cpu", "random")
    sides = [k for k in e if k != "speedup"]
    assert len(sides) == 2
    assert e[sides[0]]["evaluations"] == e[sides[1]]["evaluations"] > 0
    assert e["speedup"] == e[sides[1]]["seconds"] / e[sides[0]]["seconds"]
