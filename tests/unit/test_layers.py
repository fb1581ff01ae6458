"""Layer rules, read from the imports of every module under kaon/.

A rule ``(layer, forbidden)`` says no module of ``kaon/<layer>`` imports
``kaon.<forbidden>`` (at any level: ``import kaon.db``, ``from kaon.db.x
import y``, ``from kaon import db``, and imports inside functions).
:func:`test_api_runs_no_sql` keeps SQL out of the HTTP layer, and
:func:`test_pure_layers_touch_no_sql` keeps SQLAlchemy out of the compiler,
the agent and the model.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

KAON = Path(__file__).resolve().parents[2] / "kaon"

# (layer, forbidden package): the service layer knows no HTTP; the model
# (resource definitions, validators) knows nothing of storage or services;
# identity is served beside the API, not through it.
ENFORCED: dict[tuple[str, str], str] = {
    ("core", "api"): "the service layer knows no HTTP",
    ("model", "api"): "resource definitions know no HTTP",
    ("model", "db"): "resource definitions know no storage",
    ("model", "core"): "resource definitions know no services",
    ("model", "compiler"): "the model is shared vocabulary, below the compiler",
    ("model", "agent"): "the model is shared vocabulary, below the agent",
    ("identity", "api"): "identity does not reach into the network API",
    ("compiler", "db"): "the compiler projects a snapshot, it reads no SQL",
    ("compiler", "core"): "the compiler calls no service",
    ("compiler", "api"): "the compiler knows no HTTP",
    ("compiler", "agent"): "the compiler projects intents; the agent applies them",
    ("compiler", "bus"): "the compiler hands intents to its caller, it sends nothing",
    ("agent", "db"): "the agent applies intents, it reads no database",
    ("agent", "core"): "the agent calls no service",
    ("agent", "api"): "the agent knows the bus, not the server's HTTP",
    ("agent", "compiler"): "the agent receives intents, it does not compile them",
    ("agent", "ml2"): "binding is the server's decision",
    ("dataplane", "core"): "the data plane drives the kernel, it calls no service",
    ("dataplane", "db"): "the data plane reads no database",
    ("dataplane", "api"): "the data plane knows no HTTP",
    ("dataplane", "compiler"): "the data plane knows no compiler",
    ("dataplane", "agent"): "the agent drives the data plane, not the other way round",
}

# Layers that must not touch SQLAlchemy at all (the pure ones).
NO_SQL = ("compiler", "agent", "model")


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(KAON.parent).with_suffix("").parts[:-1])


def imported_modules(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """Every module name an import statement in ``path`` names, with its line.
    ``from kaon import db`` yields ``kaon.db``; relative imports are resolved
    against the file's package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def violations(layer: str, forbidden: str) -> list[str]:
    target = f"kaon.{forbidden}"
    out = []
    for path in sorted((KAON / layer).rglob("*.py")):
        for line, name in imported_modules(path, package_of(path)):
            if name == target or name.startswith(target + "."):
                out.append(f"{path.relative_to(KAON.parent)}:{line} imports {name}")
    return sorted(set(out))


@pytest.mark.parametrize(("layer", "forbidden"), sorted(ENFORCED), ids=lambda x: str(x))
def test_layer_rule(layer: str, forbidden: str) -> None:
    found = violations(layer, forbidden)
    assert not found, f"kaon.{layer} must not import kaon.{forbidden} ({ENFORCED[layer, forbidden]}):\n" + "\n".join(
        found
    )


@pytest.mark.parametrize("layer", NO_SQL)
def test_pure_layers_touch_no_sql(layer: str) -> None:
    found = [f"{path.relative_to(KAON.parent)}:{line} imports {name}"
             for path in sorted((KAON / layer).rglob("*.py"))
             for line, name in imported_modules(path, package_of(path))
             if name == "sqlalchemy" or name.startswith("sqlalchemy.")]
    assert not found, f"kaon/{layer} must not use SQLAlchemy:\n" + "\n".join(found)


# The API opens transactions (kaon.db.engine) and names their types; every
# statement is the service layer's. What kaon/api may take from SQL land:
# It also says which transactions are re-run on a deadlock (kaon.db.retry):
# a property of the transaction, like opening it.
API_SQL_ALLOWED = {"kaon.db.engine", "kaon.db.retry", "sqlalchemy", "sqlalchemy.Engine", "sqlalchemy.Connection",
                   "sqlalchemy.exc"}


# The metrics read state at scrape time through the service layer, like every other reader; they
# time the engine's statements (kaon.metrics.dbtime) with SQLAlchemy's events.
METRICS_SQL_ALLOWED = API_SQL_ALLOWED | {"sqlalchemy.event"}


def sql_imports(layer: str, allowed: set[str]) -> list[str]:
    found = []
    for path in sorted((KAON / layer).rglob("*.py")):
        for line, name in imported_modules(path, package_of(path)):
            sql = name == "sqlalchemy" or name.startswith(("sqlalchemy.", "kaon.db"))
            if sql and name not in allowed and not name.startswith(("kaon.db.engine.", "kaon.db.retry.")):
                found.append(f"{path.relative_to(KAON.parent)}:{line} imports {name}")
    return found


def test_api_runs_no_sql() -> None:
    found = sql_imports("api", API_SQL_ALLOWED)
    assert not found, "kaon/api must leave SQL to kaon/core and kaon/db:\n" + "\n".join(found)


def test_metrics_run_no_sql() -> None:
    found = sql_imports("metrics", METRICS_SQL_ALLOWED)
    assert not found, "kaon/metrics must read through kaon/core:\n" + "\n".join(found)


def test_rules_name_real_layers() -> None:
    for layer, forbidden in ENFORCED:
        assert (KAON / layer).is_dir() and (KAON / forbidden).is_dir(), (layer, forbidden)


def test_the_scanner_sees_every_import_form(tmp_path: Path) -> None:
    """The checker itself: each spelling of an import of kaon.db is caught."""
    sample = tmp_path / "probe.py"
    sample.write_text(
        "import kaon.db.engine\n"
        "from kaon.db import engine\n"
        "from kaon import db\n"
        "def f():\n    from ..db import core_tables\n"
    )
    names = [name for _, name in imported_modules(sample, "kaon.core")]
    assert names.count("kaon.db.engine") == 2
    assert "kaon.db" in names
    assert "kaon.db.core_tables" in names
