"""Messages speak the reader's language: a command line's errors name ``--flags``, the same errors
raised from Python name keyword arguments and config keys (``overwrite=True``), and no message of the
library hard-codes a flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import evostyle
from evostyle.cli.search import main as search_main
from evostyle.errors import EvostyleError, cli_errors, flag, resume_hint
from evostyle.search import make_config, run_search

LIBRARY = Path(evostyle.__file__).parent
COMMAND_LINE_ONLY = ("cli", "bench/cli.py", "__main__.py")
"""Modules that only a command line runs: their messages may name flags."""
FLAG = re.compile(r"(?<![\w-])--[a-z]")
OTHER_TOOLS = re.compile(r"(pip install|ray start|evostyle weights import|python -m [\w.]+)[^\"']*$")
"""A flag of another command shown in full (``pip install --force-reinstall``) is that command's."""

TINY = dict(size=32, steps=2, popsize=5, outputs=2, maxiter=0, weights="random", device="cpu", seed=1,
            search=["angles"])


def test_flag_is_spelled_for_the_reader():
    assert flag("overwrite", True) == "overwrite=True" and flag("out") == "out=..."
    assert flag("resume", "runs/a", python=True) == "resume=True"
    assert flag("image_init", "content") == "image_init='content'"
    assert flag("content", python="") == "content=''"
    with pytest.raises(SystemExit), cli_errors():
        assert flag("overwrite", True) == "--overwrite" and flag("out") == "--out"
        assert flag("resume", "runs/a", python=True) == "--resume runs/a"
        assert flag("image_init", "content") == "--image-init content" and flag("content", python="") == "--content"
        assert resume_hint("runs/a") == "python -m evostyle.search --resume runs/a"
        raise EvostyleError("leave the context through its error path")
    assert flag("overwrite", True) == "overwrite=True"  # the command line's spelling ended with it
    assert resume_hint("runs/a") == "evostyle.search.resume_search('runs/a')"


def test_the_same_refusal_names_keywords_from_python_and_flags_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    run_search(make_config(TINY), out, quiet=True, report=False)
    with pytest.raises(EvostyleError) as python_side:
        run_search(make_config(TINY), out, quiet=True, report=False)
    message = str(python_side.value)
    assert "overwrite=True" in message and "resume=True" in message and not FLAG.search(message), message
    argv = ["--size", "32", "--steps", "2", "--popsize", "5", "--outputs", "2", "--maxiter", "0", "--weights",
            "random", "--device", "cpu", "--seed", "1", "--search", "angles", "--quiet", "--no-report",
            "--out", str(out)]
    with pytest.raises(SystemExit) as cli_side:
        search_main(argv)
    err = capsys.readouterr().err
    assert cli_side.value.code == 2 and "--overwrite" in err and f"--resume {out}" in err, err


@pytest.mark.parametrize("settings, python_says", [
    (dict(optimizer="gde3", objective="scalar"), "objective='pareto'"),
    (dict(popsize=5, strategy="rand2bin"), "population=..."),
    (dict(scales=[64], size=32), "size=..."),
])
def test_config_refusals_from_python_name_keys(settings, python_says):
    with pytest.raises(EvostyleError) as exc:
        make_config({**TINY, **settings})
    assert python_says in str(exc.value) and not FLAG.search(str(exc.value)), str(exc.value)


def _messages(tree: ast.AST):
    """(line, text) of every string written into a raised exception or a log call in ``tree``."""
    for node in ast.walk(tree):
        is_log = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("debug", "info", "warning", "error", "exception"))
        if isinstance(node, ast.Raise) or is_log:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield sub.lineno, sub.value


def test_no_library_message_hard_codes_a_flag():
    """Every message a Python caller can meet goes through :func:`flag`; the command lines' own
    modules may name their flags."""
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        rel = path.relative_to(LIBRARY).as_posix()
        if rel.startswith(COMMAND_LINE_ONLY) or rel.endswith(COMMAND_LINE_ONLY):
            continue
        for line, text in _messages(ast.parse(path.read_text(encoding="utf-8"))):
            for m in FLAG.finditer(text):
                if not OTHER_TOOLS.search(text[:m.start()]):
                    offenders.append(f"{rel}:{line}: {text.strip()[:80]}")
    assert not offenders, "\n".join(offenders)
