"""The package's layout: no import cycles, the library never imports the command lines or the benchmark,
and every entry point starts."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "evostyle"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules of evostyle that ``path`` imports anywhere (functions too), outside ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    this = _module(path)
    package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "evostyle":
                continue
            for alias in node.names:  # "from evostyle.x import y": y may be a submodule
                sub = f"{base}.{alias.name}"
                out.add(sub if (ROOT / (sub.replace(".", "/") + ".py")).exists()
                        or (ROOT / sub.replace(".", "/")).is_dir() else base)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "evostyle"}
    return out - {this}


GRAPH = {_module(p): _imports(p) for p in PKG.rglob("*.py")}


def _cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return None
    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycles():
    # an import of a submodule runs its package's __init__ first; that implicit edge is not counted
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH))


def test_the_library_imports_neither_the_command_lines_nor_the_benchmark():
    for mod, deps in GRAPH.items():
        if mod.startswith(("evostyle.cli", "evostyle.bench")) or mod.endswith("__main__"):
            continue
        bad = sorted(d for d in deps if d.startswith(("evostyle.cli", "evostyle.bench")))
        assert not bad, f"{mod} imports {bad}"


@pytest.mark.parametrize("argv", [["-m", "evostyle.search", "--help"], ["-m", "evostyle.transfer", "--help"],
                                  ["-m", "evostyle.report", "--help"], ["-m", "evostyle.bench", "--help"],
                                  ["-m", "evostyle", "--version"], ["-m", "evostyle", "search", "--help"]],
                         ids=lambda a: " ".join(a[1:]))
def test_entry_points_start(argv):
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout or proc.stdout.startswith("evostyle ")


def test_the_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'evostyle = "evostyle.cli.main:main"' in text and (PKG / "py.typed").exists()
