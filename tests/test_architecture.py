"""The package's shape, checked: the layers of docs/architecture.md (each imports only from those
below it), no import cycles between modules (every import counts, those inside functions and under
TYPE_CHECKING too), and no library module over 400 lines."""

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent / "evostyle"
MAX_LINES = 400
LAYERS = (("cli", "bench"), ("search",), ("report",), ("rundir",), ("transfer", "de"), ("style",), ("network",),
          ("io",), ("registry", "errors", "progress", "types", "seeding"))
"""docs/architecture.md's layers, top to bottom (the package's own ``__init__`` and the ``__main__``
entry points stand above them all)."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The evostyle modules ``name`` imports: ``from a.b import c`` counts as a.b.c where that is a
    module, else as a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a package's __init__ re-exports its modules; a module importing its own package's names would
    # close a circle through it, which this counts too
    assert _cycles(graph) == []


def test_no_library_module_over_400_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules by their jobs: {long}"


def _layer(module: str) -> int:
    part = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if part in names)


def test_each_layer_imports_only_from_the_layers_below_it():
    modules = _modules()
    upward = [f"{a} -> {b}" for a, path in sorted(modules.items())
              if a != "evostyle" and not a.endswith(".__main__")
              for b in sorted(_imports(a, path, modules)) if b != "evostyle" and _layer(b) < _layer(a)]
    assert upward == []


def test_de_knows_nothing_of_style_transfer():
    modules = _modules()
    used = {b.split(".")[1] for a, path in modules.items() if a.startswith("evostyle.de")
            for b in _imports(a, path, modules) if b != "evostyle"}
    assert used <= {"de", "errors", "types", "registry"}, used
