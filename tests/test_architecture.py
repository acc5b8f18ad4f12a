"""The package's shape: no import cycles, no private names imported across modules, no module over
400 lines, and no environment variables written as internal plumbing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mrparotid"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, *, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """(imported mrparotid module, names taken from it, line) for each import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrparotid"):
            names = [a.name for a in node.names]
            # "from mrparotid.data import splits" imports the module mrparotid.data.splits
            subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]
            found += [(s, [], node.lineno) for s in subs]
            rest = [n for n in names if f"{node.module}.{n}" not in MODULES]
            if rest or not subs:
                found.append((node.module, rest, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("mrparotid")]
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def module_graph() -> dict[str, set[str]]:
    """Module-level imports between mrparotid modules (a package's ``__init__`` is its own node)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps = {m for m, _, _ in imports_of(path, top_level_only=True) if m in MODULES and m != name}
        graph[name] = deps
    return graph


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_name_imported_across_modules():
    offences = []
    for name, path in MODULES.items():
        for module, names, line in imports_of(path, top_level_only=False):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [part for part in module.split(".") if part.startswith("_")
                        and part not in ("__init__", "__main__")]
            if private and module != name:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports "
                                f"{', '.join(private)} from {module}")
    assert not offences, "\n".join(offences)


def test_subpackages_say_what_flows_in_and_out():
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "mrparotid":
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            assert doc and "In:" in doc and "Out:" in doc, f"{name} needs a docstring with In:/Out:"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by idea"


def test_no_environment_variable_is_written():
    """Settings travel as arguments, not through os.environ (reading a user's variable is fine)."""
    offences = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = None
            if isinstance(node, ast.Assign):
                target = next((t for t in node.targets if isinstance(t, ast.Subscript)), None)
                target = target.value if target is not None else None
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("pop", "setdefault", "update", "putenv"):
                target = node.func.value
            if target is not None and ast.unparse(target) in ("os.environ", "environ"):
                offences.append(f"{name}:{node.lineno}")
    assert not offences, "environment written at " + ", ".join(offences)
