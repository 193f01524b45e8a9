from evostyle.bench import main, throughput


def test_throughput_row_on_cpu():
    import torch
    r = throughput(32, 2, "fp32", False, False, 4, torch.device("cpu"))
    assert r["ms_per_image_step"] > 0 and r["image_steps_per_s"] > 0 and r["note"] == ""


def test_bench_cli_prints_table(tmp_path, capsys):
    assert main(["--sizes", "32", "--batches", "1", "--steps", "4", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| size | batch | precision" in out and "ms/image-step" in out
    assert (tmp_path / "bench.json").is_file() and (tmp_path / "bench.md").is_file()
