"""The run directory's schema: every file name, CSV column and state a search writes, in one place.

Every writer (:class:`~evostyle.rundir.rundir.RunDir`) and reader (:mod:`evostyle.rundir.reader`,
the report, the command lines) takes its names from here, so a file is renamed in one line::

    .evostyle-run     the marker (JSON): run id, evostyle version, creation time, SHA-256 of the config
    .evostyle-lock    the exclusive lock of the one process working on the run
    config.json       the record: format, resolved config, plan, space, weights, environment, seed
    candidates.csv    one row per evaluated candidate (appended and fsync'ed once per generation)
    generations.csv   one row per generation (GENERATION_COLUMNS)
    state.json        {"status": one of STATUSES, "generations_done": n, "error"/"signal"/"events"}
    summary.json      the finished run: best, baseline, noise floor, optimiser, front, hypervolume, seconds
    content.png, style_<i>.png    the inputs as the run used them
    best/output_<k>.png, best/best.json    the best candidate's outputs and row
    best/baseline_<k>.png                  its same-target baseline's outputs
    transfer_state_g<ggg>.pt               a multi-fidelity search's newest transfers, to continue them
    images/g<ggg>_c<ccc>_k<k>.jpg          candidates' outputs
    plot_*.png, report_*.png, report.html, summary.md    the report
"""

from __future__ import annotations

FORMAT = "evostyle-run/2"
"""config.json's ``format``. Runs written by evostyle 0.2 have none: their plan is spread over
top-level keys, which :func:`evostyle.rundir.record.plan_of` still reads."""

MARKER = ".evostyle-run"
LOCK = ".evostyle-lock"
PROBE = ".write-test-"
"""Prefix of the empty file :func:`~evostyle.rundir.layout.ensure_dir` writes and removes to test that a
folder is writable."""

CONFIG = "config.json"
CANDIDATES = "candidates.csv"
GENERATIONS = "generations.csv"
STATE = "state.json"
SUMMARY = "summary.json"
REPORT = "report.html"
SUMMARY_MD = "summary.md"
CONTENT = "content.png"
IMAGES = "images"
BEST = "best"
BEST_JSON = f"{BEST}/best.json"
PLOT_FRONT, PLOT_CONVERGENCE, PLOT_PARAMS, PLOT_SLICES = ("plot_pareto.png", "plot_convergence.png",
                                                         "plot_params.png", "plot_slices.png")
PLOTS = (PLOT_FRONT, PLOT_CONVERGENCE, PLOT_PARAMS, PLOT_SLICES)
"""The report's plots, in the order the report shows them: front, convergence, parameters, slices."""

FIDELITY_COLUMNS = ("steps", "steps_run")
"""candidates.csv's extra columns in a multi-fidelity search: the transfer steps a row's outputs had in
all, and how many of them this evaluation ran (fewer when a promoted candidate continued)."""
SCALE_COLUMN = "scale"
"""candidates.csv's column in a multi-fidelity search over a coarse-to-fine ladder: the long side (px) a
row's outputs were transferred and scored at."""


def style_image(i: int) -> str:
    """The run's copy of style image ``i``."""
    return f"style_{i}.png"


def best_output(k: int) -> str:
    """Output ``k`` of the best candidate (PNG, lossless)."""
    return f"{BEST}/output_{k}.png"


def baseline_output(k: int) -> str:
    """Output ``k`` of the best candidate's same-target baseline (PNG): what its diversity is worth."""
    return f"{BEST}/baseline_{k}.png"


def transfer_state(generation: int) -> str:
    """Where a multi-fidelity search's generation's transfers stand (torch.save of {"generation": g,
    "state": TransferState fields}): the next rung's promotions continue from it, after a resume too.
    Written before the generation's rows; the older ones are removed once the rows are logged."""
    return f"transfer_state_g{generation:03d}.pt"


TRANSFER_STATES = "transfer_state_g*.pt"
"""Glob of every :func:`transfer_state` file."""


def candidate_image(generation: int, candidate: int, k: int) -> str:
    """Output ``k`` of one candidate of one generation (JPEG, quality 85)."""
    return f"{IMAGES}/g{generation:03d}_c{candidate:03d}_k{k}.jpg"


LAYOUT = (CONFIG, CANDIDATES, GENERATIONS, STATE, SUMMARY, REPORT, SUMMARY_MD, CONTENT, "style_*.png",
          "plot_*.png", "report_*.png", f"{BEST}/output_*.png", f"{BEST}/baseline_*.png", BEST_JSON,
          f"{IMAGES}/g*_c*_k*.jpg", TRANSFER_STATES, MARKER)
"""Glob patterns of the files evostyle writes into a run directory (the lock file aside): what
``--overwrite`` may remove, and nothing else."""

SECONDS_COLUMN = "gen_seconds_per_candidate"
"""candidates.csv's time column: the generation's evaluation seconds divided by its candidates. All
of a population's outputs are optimised in one batched transfer, so no candidate has a time of its
own; the name says what the number is."""
LEGACY_COLUMNS = {"seconds": SECONDS_COLUMN}
"""Candidate columns renamed since runs were first written (old name -> new): runs written before
still resume and load."""
GENERATION_COLUMNS = ("generation", "best_fitness", "gen_best", "gen_mean", "gen_std", "n_failed", "nfev",
                      "hypervolume", "front_size", "elapsed", "eval_seconds", "chunk_size")
"""generations.csv: the generation, the best fitness so far and this generation's best, mean and std
(ddof 1, as pandas), failed candidates, evaluations so far, the hypervolume and size of the front of
everything evaluated so far, wall seconds since the start, the generation's evaluation seconds, and
the rows per forward pass it ran with."""
SCORE_COLUMNS = ("loss_score", "fidelity", "fidelity_style", "fidelity_content", "diversity_pixel",
                 "diversity_feature")
"""The per-candidate scores summary.json gives for the best candidate and its same-target baseline."""

WORDS = {
    "fitness": ("fitness", "lower is better"),
    "fidelity": ("fidelity", "lower is better: how far the outputs are from the content and the painting"),
    "loss_score": ("own-target loss", "lower is better: each output against its own rotated target"),
    "diversity_pixel": ("pixel diversity", "higher is more diverse"),
    "diversity_feature": ("feature diversity", "higher is more diverse"),
}
"""The one vocabulary of the scores: {column: (the words for it, its direction)}. Help, report, summary
and README say these words; the CSV keeps its column names. ``fidelity`` is a distance, so lower is
better; the searched quantity besides diversity is the fidelity (or, with ``fitness_loss =
own_target``, the own-target loss)."""


def word(column: str) -> str:
    """The words for a score column (``diversity_feature`` -> "feature diversity"); a column without an
    entry is its own name."""
    return WORDS.get(column, (column, ""))[0]


def label(column: str) -> str:
    """A score column's words with its direction, for an axis or a table head: "fidelity (lower is
    better)"."""
    words, direction = WORDS.get(column, (column, ""))
    return f"{words} ({direction.split(':')[0]})" if direction else words


def metric_of(column: str) -> str:
    """The diversity metric a ``diversity_<metric>`` column holds (the key of a noise floor)."""
    return column.removeprefix("diversity_")

STATUSES = {
    "running": "a process is working on it",
    "finished": "every generation, the baseline and summary.json are written",
    "interrupted": "stopped by a signal after its last whole generation; it can be resumed",
    "failed": "stopped by an error (state.json names it); it can be resumed",
}
"""state.json's ``status`` values and what each means: the one table the search, the report and the
command lines use. A run "looks complete" only when its status is ``finished``."""
GONE = "interrupted (the process that ran it is gone; it can be resumed)"
"""How a ``running`` status reads when no process holds the run's lock (a killed run)."""
