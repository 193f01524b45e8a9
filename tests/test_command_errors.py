"""Issue 28, class 5: signals and errors outside the generation loop end a command in one line and an
exit status, never a traceback; a finished run stays finished whatever stops its report."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from evostyle.errors import EXIT_RESOURCE, Stopped, cli_errors, is_out_of_memory
from evostyle.io.samples import sample_image

TINY = ["--size", "32", "--steps", "2", "--popsize", "5", "--outputs", "2", "--maxiter", "0", "--weights",
        "random", "--device", "cpu", "--seed", "1", "--search", "angles"]


def _ends_in_one_line(capsys, fn, status):
    fix = "lower --size or --max-batch"
    with pytest.raises(SystemExit) as exc, cli_errors(prog="evostyle.test", memory_fix=fix):
        fn()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == status and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_any_os_error_and_out_of_memory_on_any_device_end_in_one_line(capsys):
    def eio():
        raise OSError(errno.EIO, "Input/output error", "/mnt/gone/candidates.csv")
    line = _ends_in_one_line(capsys, eio, EXIT_RESOURCE)
    assert "Input/output error (EIO) on /mnt/gone/candidates.csv" in line

    def cpu_oom():
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)")
    line = _ends_in_one_line(capsys, cpu_oom, EXIT_RESOURCE)
    assert "out of memory" in line and "--size" in line and "--max-batch" in line
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"), cli_errors():  # a bug stays a traceback
        raise RuntimeError("shape mismatch")


def test_the_cpu_allocator_running_out_halves_the_chunk(monkeypatch):
    """The transfer treats the CPU allocator's "can't allocate memory" as out of memory: it retries
    with half the rows, as on CUDA, and the rows come out as an uninterrupted run's."""
    import torch

    import evostyle.transfer.run as tr
    from evostyle.transfer import StyleEngine, TransferConfig
    eng = StyleEngine(sample_image("cat.jpg"), [sample_image("starry_night.jpg")], TransferConfig(steps=2),
                      size=32, weights="random", device="cpu", seed=0)
    run = lambda: eng.run(torch.ones(4, 1), torch.tensor([0.0, 90.0, 180.0, 270.0])[:, None], torch.ones(4))
    whole = run()
    real, sizes = tr._optimise_chunk, []

    def tight(*args, **kwargs):
        rows = args[5].shape[0]
        sizes.append(rows)
        if rows > 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return real(*args, **kwargs)
    monkeypatch.setattr(tr, "_optimise_chunk", tight)
    halved = run()
    assert sizes[0] == 4 and set(sizes[1:]) == {2} and torch.equal(halved.images, whole.images)


def test_a_signal_anywhere_in_a_command_ends_in_one_line_and_the_handlers_are_restored(capsys):
    before = signal.getsignal(signal.SIGTERM)
    line = _ends_in_one_line(capsys, lambda: os.kill(os.getpid(), signal.SIGTERM) or signal.pause(),
                             128 + signal.SIGTERM)
    assert line == "evostyle.test: interrupted (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) is before

    def ctrl_c():
        raise KeyboardInterrupt
    assert _ends_in_one_line(capsys, ctrl_c, 130) == "evostyle.test: interrupted (SIGINT)"

    def stopped():
        raise Stopped(signal.SIGHUP, "nothing was written")
    assert _ends_in_one_line(capsys, stopped, 128 + signal.SIGHUP).endswith("(SIGHUP); nothing was written")


def test_a_signal_while_a_finished_run_writes_its_report_leaves_it_finished(tmp_path, capsys, monkeypatch):
    import evostyle.report.html as report
    from evostyle.cli.search import main

    def cut(*args, **kwargs):
        raise Stopped(signal.SIGTERM)
    monkeypatch.setattr(report, "write_report", cut)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main([*TINY, "--quiet", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 128 + signal.SIGTERM and len(err) == 1, err
    assert f"{out} is finished; its report was not written: rebuild it with python -m evostyle.report {out}" in err[0]
    assert json.loads((out / "state.json").read_text())["status"] == "finished"
    assert (out / "summary.json").is_file() and not (out / "report.html").exists()


def test_stdout_closed_by_its_reader_ends_a_finished_run_quietly(tmp_path):
    """``python -m evostyle.search ... | head -0``: the reader leaves before the last lines."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "evostyle.search", *TINY, "--no-report", "-q", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # nobody reads: the first print meets a broken pipe
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert json.loads((out / "state.json").read_text())["status"] == "finished"


def test_a_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys):
    """Before the command's own handling is in place (torch is still loading under ``python -m``): a
    hook prints one line, only for evostyle's own commands, and the command hands the hook back."""
    from evostyle.errors import quiet_interrupt_hook, started_as_command
    monkeypatch.setattr(sys, "argv", ["-m"])  # as while runpy imports the package of python -m ...
    for argv, ours in ((["python", "-m", "evostyle.search", "--size", "32"], True),
                       (["python", "-m", "evostyle"], True), (["python", "-m", "otherpkg.tool"], False),
                       (["python", "-c", "..."], False)):
        monkeypatch.setattr(sys, "orig_argv", argv, raising=False)
        assert started_as_command() is ours, argv
    seen = []
    hook = quiet_interrupt_hook(lambda *exc: seen.append(exc[0]))
    hook(KeyboardInterrupt, KeyboardInterrupt(), None)
    hook(ValueError, ValueError("a bug"), None)
    assert capsys.readouterr().err.strip() == "evostyle: interrupted (SIGINT) while starting; nothing was written"
    assert seen == [ValueError]  # anything else goes to the hook it replaced
    monkeypatch.setattr(sys, "excepthook", hook)
    with cli_errors():
        assert sys.excepthook is not hook  # start-up is over: --debug tracebacks are not hidden
    p = subprocess.run([sys.executable, "-m", "evostyle", "--version"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("evostyle ")


def test_a_file_name_that_is_not_utf8_does_not_break_the_report(tmp_path):
    if sys.getfilesystemencoding().lower() != "utf-8":
        pytest.skip("needs a UTF-8 file system encoding")
    content = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.jpg")  # Latin-1 bytes: not UTF-8
    shutil.copy(sample_image("cat.jpg"), content)
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "evostyle.search", *TINY, "-q", "--content", content, "--out",
                        str(out)], capture_output=True, timeout=300)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "caf\ufffd.jpg" in page and "caf\ufffd.jpg" in (out / "summary.md").read_text(encoding="utf-8")
