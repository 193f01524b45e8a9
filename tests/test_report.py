import base64
import re
import shutil

import pytest

from evostyle.cli.report import main as report_main
from evostyle.cli.search import main
from evostyle.io.images import data_uri
from evostyle.io.samples import sample_image
from evostyle.report.html import write_report
from evostyle.report.plots import pareto_front


@pytest.fixture(scope="module")
def evil_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("evil")
    content = d / "<script>alert(1)<script>.jpg"  # a file name cannot hold "/"
    shutil.copy(sample_image("cat.jpg"), content)
    out = d / "run"
    rc = main(["--content", str(content), "--size", "32", "--steps", "2", "--popsize", "5", "--outputs", "2",
               "--maxiter", "1", "--weights", "random", "--device", "cpu", "--quiet", "--out", str(out),
               "--search", "angles", "mix", "layers"])
    assert rc == 0
    return out


def test_report_names_params_embeds_images_and_escapes(evil_run):
    page = (evil_run / "report.html").read_text()
    for name in ["angle_0", "angle_1", "mix"] + [f"layer_relu{i}_1" for i in range(1, 6)]:
        assert name in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;script&gt;" in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) >= 3 + 1 + 2 + 2  # 3 plots, content, 2 styles... at least
    for src in srcs:
        assert src.startswith("data:image/")
        base64.b64decode(src.split(",", 1)[1], validate=True)
    assert "random-init VGG19" in page
    for f in ("plot_convergence.png", "plot_params.png", "plot_pareto.png", "summary.md"):
        assert (evil_run / f).is_file()


def test_report_cli_rebuilds_and_rejects_non_run(evil_run, tmp_path, capsys):
    (evil_run / "report.html").unlink()
    assert report_main([str(evil_run)]) == 0
    assert (evil_run / "report.html").is_file()
    with pytest.raises(SystemExit) as exc:
        report_main([str(tmp_path)])
    assert exc.value.code == 2 and "not a run directory" in capsys.readouterr().err


def test_pareto_front():
    import numpy as np
    loss = np.array([1.0, 2.0, 3.0, 2.5, np.inf])
    div = np.array([0.1, 0.3, 0.2, 0.4, 0.9])
    assert pareto_front(loss, div).tolist() == [True, True, False, True, False]


def test_write_report_returns_path(evil_run):
    assert write_report(evil_run).name == "report.html"


def test_the_report_says_first_whether_the_search_was_worth_it_and_compares_runs(evil_run, tmp_path, capsys):
    """At the top: the best outputs beside the same-target baseline's, with both fitnesses; the
    baseline on the plots; --compare draws another run (random search here) on the same plots."""
    from evostyle.rundir import files
    from evostyle.rundir.result import SearchResult
    res = SearchResult.from_dir(evil_run)
    assert len(res.baseline_images()) == 2 and "fitness" in res.baseline  # saved by the search
    page = (evil_run / "report.html").read_text()
    top = page[:page.index("<h2>The Pareto front")]
    assert re.search(r'<p class="verdict">(Worth it|Not worth it here): ', top) and "same-target baseline" in top
    assert f"<th>wall time</th><td>{res.seconds:.1f} s (generations" in page  # summary.json's, not a second one
    assert top.count("<img") == 4 and f"{res.baseline['fitness']:.4g}" in top  # 2 best + 2 baseline outputs
    best = (res.best["generation"], res.best["candidate"])  # its outputs once, at the top
    saved = evil_run / files.candidate_image(*best, 0)  # the same outputs as a generation saved them
    assert saved.is_file() and data_uri(saved) not in page and "its outputs are shown above" in page
    other = tmp_path / "random"
    assert main(["--size", "32", "--steps", "2", "--popsize", "5", "--outputs", "2", "--maxiter", "1",
                 "--weights", "random", "--device", "cpu", "--quiet", "--no-report", "--out", str(other),
                 "--optimizer", "random", "--search", "angles", "mix", "layers"]) == 0
    before = (evil_run / files.PLOTS[0]).read_bytes()
    assert report_main([str(evil_run), "--compare", str(other), "-q"]) == 0
    assert (evil_run / files.PLOTS[0]).read_bytes() != before  # the other run's front is drawn
    with pytest.raises(SystemExit) as exc:
        report_main([str(evil_run), "--compare", str(tmp_path / "nothing")])
    assert exc.value.code == 2 and "--compare" in capsys.readouterr().err


def test_plots_are_public_figures_with_titles_integer_counts_and_a_staircase_front(evil_run):
    """Optuna's way: each plot function takes a run and returns a matplotlib figure; every panel has a
    title, counts have whole ticks, and the front is drawn as the staircase the hypervolume measures."""
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

    from evostyle.report import plot_convergence, plot_front, plot_parameters, plot_slices
    from evostyle.rundir.result import SearchResult
    res = SearchResult.from_dir(evil_run)
    for plot in (plot_front, plot_convergence, plot_parameters, plot_slices):
        fig = plot(res)
        assert isinstance(fig, Figure), plot
        panels = [ax for ax in fig.axes if ax.has_data() and ax.get_label() != "<colorbar>"]
        assert panels and all(ax.get_title() for ax in panels), plot
    fig = plot_convergence(evil_run)
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks  # generations, evaluations
    front = res.front
    assert isinstance(front, pd.DataFrame) and len(front) == len(res.summary["front"]) >= 1
    assert {"generation", "candidate", "fitness", "param_angle_1", *res.objective_columns} <= set(front.columns)
    line = next(ln for ln in plot_front(res).axes[0].get_lines() if ln.get_label() == "front")
    x, y = line.get_xdata(), line.get_ydata()
    assert line.get_drawstyle() == "steps-post" and np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
    q, d = res.objective_columns
    assert sorted(x[:-1]) == sorted(front[q]) and set(y) == set(front[d])
