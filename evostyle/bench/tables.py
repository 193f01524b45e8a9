"""The benchmark's results as markdown: the throughput rows, the quality check, the race and the profile
(``bench.md``, and what the command prints)."""

from __future__ import annotations

from evostyle.report.html import markdown_table

ROW_COLUMNS = ["size", "batch", "precision", "channels_last", "compile", "compile_mode", "autotune", "steps",
               "ms_per_image_step", "image_steps_per_s", "peak_mib_per_image", "note"]
RACE_COLUMNS = ["side", "seconds", "later_generations_s", "speedup", "steady_speedup", "evaluations", "best_fitness",
                "targets / transfer / scoring / logging s", "note"]


def quality_md(q: dict) -> str:
    """The quality check as a heading line and a table (one row per loss term)."""
    how = f" compiled ({q.get('compile_mode') or 'default'})" if q["compile"] else ""
    return (f"Final losses, {q['precision']}{how} vs fp32 ({q['size']} px, "
            f"{q['steps']} steps, {q['batch']} rows):\n\n"
            + markdown_table([{"term": t, **q[t]} for t in ("style", "content", "total")],
                         ["term", "fp32_mean", f"{q['precision']}_mean", "rel_diff_max", "rel_diff_mean"]))


def race_md(e2e: dict) -> str:
    """The search race as a heading line and a table (one row per side)."""
    split = "targets / transfer / scoring / logging s"
    rows = [{"side": k, **v, split: " / ".join(f"{v['seconds_by_phase'][p]:.3g}" for p in
                                                ("targets", "transfer", "scoring", "logging"))}
            for k, v in e2e.items()]
    return "Search race (same config, seed and evaluations):\n\n" + markdown_table(rows, RACE_COLUMNS)


def report_md(result: dict) -> str:
    """bench.md: the device line, then a table per section measured so far."""
    info = result["device"]
    parts = [f"device: {info.get('gpu', 'cpu')}, torch {info['torch']}, {result['date']}",
             markdown_table(result["rows"], ROW_COLUMNS)]
    if "quality" in result:
        parts.append(quality_md(result["quality"]))
    if "e2e" in result:
        parts.append(race_md(result["e2e"]))
    if "profile" in result:
        parts.append(profile_md(result["profile"]))
    return "\n\n".join(parts) + "\n"


def profile_md(p: dict) -> str:
    """The kernel profile's summary line."""
    return (f"Profile ({p['size']} px, batch {p['batch']}, {p['precision']}, compile {p['compile']}, "
            f"{p['steps']} steps): wall {p['wall_ms']:.1f} ms under the profiler, GPU kernels "
            f"{p['kernel_ms']:.1f} ms = {p['kernel_ms_per_image_step']:.4g} ms per image-step "
            "(first and last forward pass included)")

