"""No dead branches in the package: an ``except`` that only re-raises must shield the exception
from a later, broader handler of the same ``try`` (else the ``try`` does nothing), and no ``if``
branch is only ``pass``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mrparotid"


def dead_branches(source: str) -> list[tuple[int, str]]:
    """(line, what) of each dead branch in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Try):
            for i, handler in enumerate(node.handlers):
                only_raise = (len(handler.body) == 1 and isinstance(handler.body[0], ast.Raise)
                              and handler.body[0].exc is None)
                if only_raise and i == len(node.handlers) - 1:
                    found.append((handler.lineno, "an except that only re-raises, with no handler after it"))
        if isinstance(node, ast.If) and len(node.body) == 1 and isinstance(node.body[0], ast.Pass):
            found.append((node.lineno, "an if branch that only passes"))
    return found


def test_dead_branches_are_found():
    assert [w for _, w in dead_branches("try:\n    f()\nexcept E:\n    raise\n")] == [
        "an except that only re-raises, with no handler after it"]
    assert dead_branches("try:\n    f()\nexcept E:\n    raise\nexcept Exception:\n    g()\n") == []
    assert [line for line, _ in dead_branches("if a:\n    pass\nelif b:\n    g()\n")] == [1]


def test_the_package_has_no_dead_branch():
    offences = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
                for path in sorted(PACKAGE.rglob("*.py"))
                for line, what in dead_branches(path.read_text(encoding="utf-8"))]
    assert not offences, "\n".join(offences)
