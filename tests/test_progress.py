"""What a person waiting sees: bars and named phases on a terminal, nothing with --quiet, and messages
through the ``evostyle`` logger as one readable line each."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
import warnings

import pytest

from evostyle.io.samples import sample_image
from evostyle.progress import setup_logging, step_counter

SEARCH = [sys.executable, "-m", "evostyle.search", "--size", "32", "--steps", "3", "--popsize", "5", "--outputs",
          "2", "--maxiter", "1", "--weights", "random", "--device", "cpu", "--seed", "1"]
TRANSFER = [sys.executable, "-m", "evostyle.transfer", "--content", sample_image("cat.jpg"), "--style",
            sample_image("starry_night.jpg"), "--size", "32", "--steps", "4", "--weights", "random", "--device",
            "cpu"]


def _on_a_terminal(cmd: list[str]) -> tuple[int, str, str]:
    """Run ``cmd`` with its stderr on a pseudo-terminal (as in a shell); (exit status, stdout, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows x 120 columns
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode()
    proc.wait(timeout=120)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def test_search_on_a_terminal_shows_the_run_directory_first_then_bars_and_phases(tmp_path):
    out = tmp_path / "run"
    rc, stdout, err = _on_a_terminal(SEARCH + ["--out", str(out)])
    assert rc == 0, err
    assert err.index(f"run directory: {out}") < err.index("generations")  # told where before waiting
    for phase in ("generation 0: transfer", "step/s", "scoring the outputs", "same-target baseline",
                  "baseline: transfer", "writing the report"):
        assert phase in err, phase
    assert "best fitness" in stdout
    both = stdout + err  # each fact once: where the run is at the start, what to open at the end
    assert both.count("run directory:") == 1 and f"report: {out / 'report.html'}" in stdout


def test_quiet_search_and_transfer_print_nothing_on_stderr(tmp_path):
    rc, stdout, err = _on_a_terminal(SEARCH + ["--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 0 and err.strip() == "" and "best fitness" in stdout
    assert f"report: {tmp_path / 'run' / 'report.html'}" in stdout  # silenced on stderr, so said here
    rc, stdout, err = _on_a_terminal(TRANSFER + ["--out", str(tmp_path / "t"), "--quiet"])
    assert rc == 0 and err.strip() == "" and "wrote 1 image(s)" in stdout


def test_transfer_on_a_terminal_has_a_step_bar(tmp_path):
    rc, _, err = _on_a_terminal(TRANSFER + ["--out", str(tmp_path / "t")])
    assert rc == 0, err
    assert "transfer: 1 output(s), 4 steps" in err and "/4 [" in err  # the bar over the 4 steps


def test_without_a_terminal_no_bar_is_drawn(tmp_path):
    """Piped into a file (a log, CI): the phases are there, the bars' carriage returns are not."""
    p = subprocess.run(SEARCH + ["--out", str(tmp_path / "run"), "--no-report"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "run directory:" in p.stderr and "\r" not in p.stderr and "step/s" not in p.stderr


def test_setup_logging_levels_and_warnings_as_one_line(capsys):
    log = logging.getLogger("evostyle")
    setup_logging(0)
    log.info("phase")
    log.debug("detail")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library's notice", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "phase" in err and "detail" not in err
    assert err.strip().splitlines()[-1] == "warning: a library's notice"  # no file:line, no source line
    setup_logging(-1)
    log.info("phase")
    log.warning("careful")
    assert capsys.readouterr().err.strip() == "warning: careful"
    setup_logging(1)
    log.debug("detail")
    assert "detail" in capsys.readouterr().err


@pytest.mark.parametrize("quiet", [False, True])
def test_step_counter_restarts_for_each_chunk_and_closes(quiet):
    progress, close = step_counter("transfer", quiet)
    for _ in range(2):  # two chunks of rows, each counting its steps from 1
        for step in range(1, 4):
            progress(step, 3)
    close()
    close()  # idempotent
