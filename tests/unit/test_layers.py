"""Layer rules of the compiler, the agent, the model and the data plane, checked on the imports.

The compiler is pure (a snapshot in, intents out): no database, no service
layer, no HTTP. The agent knows the intent, the bus and the data plane, never
the server's modules. The model is shared vocabulary: it imports none of the
layers above it. The data plane knows no server state.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KAON = Path(__file__).resolve().parents[2] / "kaon"

FORBIDDEN = {
    "compiler": ("kaon.db", "kaon.core", "kaon.api", "kaon.agent", "kaon.bus", "sqlalchemy"),
    "agent": ("kaon.db", "kaon.core", "kaon.api", "kaon.compiler", "kaon.ml2", "sqlalchemy"),
    "model": ("kaon.db", "kaon.core", "kaon.api", "kaon.compiler", "kaon.agent", "sqlalchemy"),
    "dataplane": ("kaon.db", "kaon.core", "kaon.api", "kaon.compiler", "kaon.agent"),
}


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_rules(package: str) -> None:
    broken = []
    for path in sorted((KAON / package).rglob("*.py")):
        for module in sorted(imports(path)):
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN[package]):
                broken.append(f"{path.relative_to(KAON.parent)} imports {module}")
    assert not broken, "layer rule broken:\n" + "\n".join(broken)
