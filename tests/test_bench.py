import json

import pytest

from evostyle.bench.cli import main
from evostyle.bench.measure import profile, quality, throughput


def test_throughput_row_on_cpu():
    import torch
    r = throughput(32, 2, "fp32", False, False, 4, torch.device("cpu"))
    assert r["ms_per_image_step"] > 0 and r["image_steps_per_s"] > 0 and r["note"] == ""


def test_throughput_reports_the_median_of_its_repeats(monkeypatch):
    """Each timed pair gives one estimate; the row is their median, every estimate is kept."""
    import torch

    from evostyle.bench import measure
    lengths, clock = [], iter([9.0, 9.0] + [0.1, 0.5, 0.2, 0.8, 0.3, 0.4])

    def fake_time(model, content, targets, cfg, device):
        lengths.append(cfg.steps)
        return next(clock), []
    monkeypatch.setattr(measure, "_time", fake_time)
    r = throughput(32, 2, "fp32", False, False, 8, torch.device("cpu"), repeats=3)
    assert lengths == [2, 8] + [2, 8] * 3  # warm-up short and long, then three timed pairs
    # pairs (t_long - t_short) / (6 extra steps * 2 rows): 0.4 / 12, 0.6 / 12, 0.1 / 12 s
    assert r["ms_runs"] == pytest.approx([400 / 12, 600 / 12, 100 / 12])
    assert r["ms_per_image_step"] == pytest.approx(400 / 12)


@pytest.mark.parametrize("min_seconds,steps", [(0.4, 32), (100.0, 160), (0.05, 8)])
def test_short_rows_are_lengthened_to_min_seconds(monkeypatch, min_seconds, steps):
    """A row whose untimed full-length run (8 steps) took 0.1 s times its pairs with steps raised in
    proportion to ``min_seconds`` (at most 20x; never lowered), and records the steps it used."""
    import torch

    from evostyle.bench import measure
    lengths = []

    def fake_time(model, content, targets, cfg, device):
        lengths.append(cfg.steps)
        return 0.1 * cfg.steps / 8, []
    monkeypatch.setattr(measure, "_time", fake_time)
    r = throughput(32, 2, "fp32", False, False, 8, torch.device("cpu"), repeats=2, min_seconds=min_seconds)
    assert lengths == [2, 8] + [steps // 4, steps] * 2
    assert r["steps"] == steps
    assert r["ms_per_image_step"] == pytest.approx(100 / 8 / 2)  # 0.1 s per 8 steps of 2 rows


def test_bench_cli_prints_table(tmp_path, capsys):
    assert main(["--sizes", "32", "--batches", "1", "--steps", "4", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| size | batch | precision" in out and "ms/image-step" in out
    assert (tmp_path / "bench.json").is_file() and (tmp_path / "bench.md").is_file()
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["argv"][:2] == ["--sizes", "32"] and len(saved["rows"]) == 1
    assert saved["settings"]["sizes"] == [32] and saved["settings"]["precisions"] == ["fp32"]  # defaults resolved
    assert saved["settings"]["seed"] == 0 and {"torch", "scipy", "numpy", "python"} <= set(saved["environment"])
    assert saved["rows"][0]["ms_per_image_step"] > 0


def test_bench_notes_an_out_of_memory_retry(monkeypatch):
    """A row whose batch had to be split says so instead of passing for a full-batch figure."""
    import torch

    from evostyle.transfer import run as tr
    real = tr._optimise_chunk

    def small_memory(model, content, content_feat, targets, *args):
        if next(iter(targets.values())).shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(model, content, content_feat, targets, *args)

    monkeypatch.setattr(tr, "_optimise_chunk", small_memory)
    r = throughput(32, 2, "fp32", False, False, 4, torch.device("cpu"))
    assert "out of memory at 2 rows per chunk; retrying with 1" in r["note"]


def test_quality_compares_bf16_with_fp32_on_cpu():
    import torch
    q = quality(32, 4, 2, "bf16", torch.device("cpu"))
    for term in ("style", "content", "total"):
        assert q[term]["fp32_mean"] > 0 and q[term]["bf16_mean"] > 0
        assert 0 < q[term]["rel_diff_max"] < 0.1  # bf16 differs from fp32, but not by much


def test_profile_lists_the_convolutions():
    import torch
    p = profile(32, 2, "fp32", 2, torch.device("cpu"))
    assert "convolution" in p["table"]
    assert p["steps"] == 2 and p["batch"] == 2 and p["wall_ms"] > 0
    assert p["kernel_ms"] != p["kernel_ms"]  # NaN: no GPU kernels on the CPU


def test_end_to_end_race_runs_the_same_budget_on_both_sides():
    from evostyle.bench.race import REFERENCE, end_to_end
    e = end_to_end(32, 2, 5, 1, 2, "cpu", "random")
    assert list(e) == ["torch-de batched", REFERENCE]
    fast, ref = e["torch-de batched"], e[REFERENCE]
    assert fast["evaluations"] == ref["evaluations"] == 10
    assert fast["speedup"] == ref["seconds"] / fast["seconds"]
    assert 0 < fast["later_generations_s"] < fast["seconds"] and 0 < ref["later_generations_s"] < ref["seconds"]
    assert set(fast["seconds_by_phase"]) == {"targets", "transfer", "scoring", "logging"}
    assert fast["steady_speedup"] == ref["later_generations_s"] / fast["later_generations_s"]


def test_race_sides_fix_their_compile_setting():
    """Each side says whether it compiles, so a search's ``compile = "auto"`` never decides it: the
    reference stays eager fp32 one candidate at a time however long the race."""
    from evostyle.bench.race import REFERENCE, race_configs
    c = race_configs(256, 1000, 20, 30, 4, "cpu", "random", (False, True))
    sides = ("torch-de batched", REFERENCE, "torch-de batched compiled")
    assert [c[k].transfer.compile for k in sides] == [False, False, True]
    assert c[REFERENCE].transfer.precision == "fp32" and c[REFERENCE].transfer.max_batch == 4


def test_race_compiled_and_eager_share_one_reference(monkeypatch, fake_compile):
    """``--e2e-compile both``: two batched sides and one reference run; the compiled side starts cold."""
    from evostyle.bench import race
    from evostyle.transfer import compiling
    from evostyle.transfer.losses import loss_terms
    monkeypatch.setattr(compiling, "_COMPILED", {(loss_terms, "default"): "stale graph from an earlier row"})
    seen = []
    e = race.end_to_end(32, 2, 5, 1, 2, "cpu", "random", compile_modes=(False, True),
                         report=lambda sides: seen.append(list(sides)))
    assert list(e) == ["torch-de batched", race.REFERENCE, "torch-de batched compiled"]  # slow start last
    assert seen == [list(e)[:1], list(e)[:2], list(e)]  # reported after each side
    # the step and the update, built anew for the compiled side, not reused from before
    assert [kw for _, kw in fake_compile] == [{"dynamic": False, "mode": "default"}] * 2
    assert e["torch-de batched compiled"]["evaluations"] == e[race.REFERENCE]["evaluations"]
    assert "speedup" in e["torch-de batched compiled"] and "speedup" not in e[race.REFERENCE]


def test_budget_skips_what_would_start_late(tmp_path, capsys):
    """Past --budget no row or section starts; the skipped ones are listed in bench.json."""
    assert main(["--sizes", "32", "--batches", "1", "2", "--steps", "4", "--device", "cpu", "--quality",
                 "--budget", "1e-9", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["rows"] == [] and "quality" not in saved
    assert len(saved["skipped"]) == 3 and saved["skipped"][-1] == "quality"
    assert "skipped (over the 1e-09 s budget)" in capsys.readouterr().out


def test_bad_race_setting_fails_before_the_grid(tmp_path, capsys):
    """popsize 4 is refused at once (one line, exit 2), before any throughput row is timed."""
    with pytest.raises(SystemExit) as exc:
        main(["--sizes", "32", "--batches", "1", "--steps", "4", "--device", "cpu", "--e2e", "--e2e-popsize", "4",
              "--out", str(tmp_path)])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "population (--population, --popsize) must be an integer in [5, " in captured.err
    assert "ms/image-step" not in captured.out and not (tmp_path / "bench.json").exists()


def test_bad_budget_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--device", "cpu", "--budget", "0"])
    assert exc.value.code == 2 and "--budget must be a positive number of seconds" in capsys.readouterr().err


def test_cli_race_and_quality_are_saved(tmp_path):
    from evostyle.bench.race import REFERENCE
    assert main(["--sizes", "32", "--batches", "1", "--steps", "4", "--device", "cpu", "--e2e", "--e2e-steps", "2",
                 "--e2e-popsize", "5", "--e2e-maxiter", "1", "--quality", "--quality-steps", "3",
                 "--out", str(tmp_path)]) == 0
    e2e = json.loads((tmp_path / "bench.json").read_text())["e2e"]
    assert list(e2e) == ["torch-de batched", REFERENCE] and e2e["torch-de batched"]["speedup"] > 0
    md = (tmp_path / "bench.md").read_text()  # the race as a table beside the throughput rows
    assert "| side | seconds | later_generations_s | speedup | steady_speedup |" in md
    assert f"| {REFERENCE} |" in md and "| torch-de batched |" in md
    assert "| targets / transfer / scoring / logging s |" in md  # where each side's time went
    assert "| term | fp32_mean | bf16_mean | rel_diff_max | rel_diff_mean |" in md and "| style |" in md


@pytest.mark.parametrize("extra,msg", [
    (["--sizes", "0"], "sizes must be between 8 and 8192 px, got 0"),
    (["--batches", "-1"], "batches must be >= 1, got -1"),
    (["--steps", "0"], "--steps must be >= 2"),  # 0 once meant "the default"
    (["--repeats", "0"], "--repeats must be >= 1"),
    (["--min-seconds", "-1"], "--min-seconds must be between 0 and 600"),
    (["--min-seconds", "nan"], "--min-seconds must be between 0 and 600"),
    (["--steps", "1"], "--steps must be >= 2"),  # once a division by zero
    (["--quality", "--quality-size", "4"], "sizes must be between 8 and 8192 px, got 4"),
    (["--quality", "--quality-steps", "0"], "--quality-steps must be >= 1"),
    (["--precisions", "fp8"], "unknown precision 'fp8'"),
    (["--compile", "on", "--compile-mode", "fast"], "unknown compile mode 'fast'"),
    (["--weights", "nope.pt"], "is neither a name (imagenet, offline, random, auto) nor an existing file"),
    (["--out", "{tmp}/file.txt"], "exists and is not a directory"),
])
def test_bad_bench_input_one_line_before_any_timing(tmp_path, capsys, extra, msg):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["--device", "cpu", "--sizes", "32", "--batches", "1", "--steps", "4"]
             + [a.replace("{tmp}", str(tmp_path)) for a in extra])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and msg in err[0] and "Traceback" not in captured.err
    assert "device:" not in captured.out  # nothing was timed


def test_rows_and_race_say_when_compile_fell_back(monkeypatch):
    """A compiled row or race side that ran eager (compilation failed) says so instead of passing for a
    compiled figure."""
    import torch

    from evostyle.bench import race
    from evostyle.transfer import compiling

    def broken_compile(fn, **kw):
        def compiled(*args, **kw):
            raise RuntimeError("no C++ compiler (injected)")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(compiling, "_COMPILED", {})
    monkeypatch.setattr(compiling, "_COMPILE_FAILED", False)
    r = throughput(32, 2, "fp32", False, True, 4, torch.device("cpu"))
    assert "torch.compile failed (RuntimeError" in r["note"] and "ran eager" in r["note"]
    assert r["ms_per_image_step"] > 0
    e = race.end_to_end(32, 2, 5, 1, 2, "cpu", "random", compile_modes=(True,))
    assert "ran eager" in e["torch-de batched compiled"]["note"]
    assert "note" not in e[race.REFERENCE]


def test_compile_modes_are_grid_rows_and_the_race_uses_the_last(tmp_path, fake_compile):
    """``--compile both --compile-mode default reduce-overhead``: one eager row and one row per mode,
    each compiled with its mode; the race's compiled side compiles with the last mode."""
    assert main(["--sizes", "32", "--batches", "1", "--steps", "4", "--device", "cpu", "--compile", "both",
                 "--compile-mode", "default", "reduce-overhead", "--e2e", "--e2e-steps", "2", "--e2e-popsize", "5",
                 "--e2e-maxiter", "0", "--e2e-compile", "on", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["compile"], r["compile_mode"]) for r in saved["rows"]] == [
        (False, ""), (True, "default"), (True, "reduce-overhead")]
    assert saved["settings"]["compile_modes"] == ["default", "reduce-overhead"]
    modes = [kw["mode"] for _, kw in fake_compile]
    assert set(modes) == {"default", "reduce-overhead"} and modes[-1] == "reduce-overhead"  # the race's
    assert "| compile_mode |" in (tmp_path / "bench.md").read_text()


def test_auto_compile_mode_names_the_mode_that_ran(tmp_path, fake_compile):
    """The default ``--compile-mode auto`` runs and records its resolved mode (default on the CPU),
    each mode once: ``auto default`` is one compiled row, and the quality check names it."""
    assert main(["--sizes", "16", "--batches", "1", "--steps", "2", "--device", "cpu", "--compile", "on",
                 "--compile-mode", "auto", "default", "--quality", "--quality-size", "16", "--quality-steps",
                 "1", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["settings"]["compile_modes"] == ["default"]
    assert [(r["compile"], r["compile_mode"]) for r in saved["rows"]] == [(True, "default")]
    assert {kw["mode"] for _, kw in fake_compile} == {"default"}
    assert saved["quality"]["compile_mode"] == "default"
    assert "bf16 compiled (default) vs fp32" in (tmp_path / "bench.md").read_text()
