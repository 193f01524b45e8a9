"""The README's Python snippets run as written (issue 27): each ```python block of "In Python", in a
fresh namespace, from an empty folder (they write only under its git-ignored runs/)."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## In Python"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_has_its_python_snippets():
    assert len(_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_a_readme_snippet_runs_as_written(index, tmp_path, monkeypatch, offline_vgg16):
    monkeypatch.chdir(tmp_path)
    code = _snippets()[index]
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, f"README.md snippet {index}", "exec"), namespace)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written and all(p.startswith("runs" + os.sep) for p in written)  # only under runs/
    if "run_search" in code:  # it can run again: the README says overwrite=True replaces its runs
        exec(compile(code, f"README.md snippet {index}, again", "exec"), {"__name__": "__readme__"})
