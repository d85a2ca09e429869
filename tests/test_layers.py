"""DESIGN.md §2, "Layers: who may import whom", checked on the code.

Every module of ours (``app``, ``workers``, ``client`` and the two entry modules ``wsgi`` and
``orion_cli``) is read with ``ast``, with the imports inside functions too, and each import of
one of our modules is checked against its layer's row below; so are the third-party packages a
layer must not use. A failure names the file, the line and the rule broken.

The rows follow DESIGN.md's table. Where the table is silent they say what we decided:

- ``app.states`` and ``app.exceptions`` are the leaves everyone stands on: any layer of the
  server may import them (the table lists them for some rows only).
- ``app.schedules`` (parsing schedules; croniter, dateutil) is a leaf too: schemas validate
  schedules with it and services compute the next runs with it.
- ``app.extensions`` (the flask-smorest ``Api`` and its error handlers) may import the
  exceptions and schemas; ``app.migrations`` the models, the database and the exceptions.
- The server's assembly (``app/__init__.py``: ``create_app``; ``app.cli``: the server's
  commands; ``app.embedded``, ``app.serving``, ``app.security``: the Host check, throttle
  and headers; ``app.prefect_ui``; ``app/__main__.py``) may import any part of
  ``app``, but never ``client`` or ``workers``.
- The entry modules: ``wsgi`` builds the app and readies it for gunicorn (``app.serving``,
  whose worker gunicorn runs); ``orion_cli`` joins the client's commands and the
  server's, importing each side only when a command of that side is looked up.
- The client's one exception, the ephemeral transport, is written here as it is in DESIGN.md:
  ``client.api.ephemeral`` may import ``app``, inside a function only.

``KNOWN_EXCEPTIONS`` lists the imports that break a rule today and are waiting for their fix;
the test also fails when one of them is gone, so the list only shrinks.
"""

import ast
import dataclasses
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "workers", "client")
ENTRY_MODULES = ("wsgi", "orion_cli")


@dataclasses.dataclass(frozen=True)
class Allow:
    """Permission to import the modules matched by ``pattern`` (``x.*``: x and everything
    under it; ``x``: that module only), at any place or, with ``lazy``, inside functions."""

    pattern: str
    lazy: bool = False


@dataclasses.dataclass(frozen=True)
class Layer:
    """One row of the table: the modules it holds (patterns as in :class:`Allow`), the modules
    of ours it may import besides its own, and the third-party packages it must not import.

    ``third_party`` restricts the rest: None allows any package; otherwise only these (and
    the standard library), at module level; ``lazy_third_party`` allows any package inside a
    function (the client's optional extras)."""

    name: str
    holds: tuple
    may_import: tuple = ()
    never: tuple = ()
    third_party: tuple | None = None
    lazy_third_party: bool = False


LEAVES = (Allow("app.states"), Allow("app.exceptions"), Allow("app.clock"))
LAYERS = (
    Layer(
        "app/states.py, app/exceptions.py, app/clock.py",
        ("app.states", "app.exceptions", "app.clock"),
        third_party=(),
    ),
    Layer("app/schedules.py", ("app.schedules",)),
    Layer("app/config.py, app/db.py", ("app.config", "app.db"), LEAVES),
    Layer("app/models/", ("app.models.*",), (Allow("app.db"), *LEAVES), never=("flask",)),
    Layer("app/schemas/", ("app.schemas.*",), (Allow("app.schedules"), *LEAVES)),
    Layer(
        "app/orchestration/",
        ("app.orchestration.*",),
        (Allow("app.models.*"), *LEAVES),
        never=("flask",),
    ),
    Layer(
        "app/services/",
        ("app.services.*",),
        (
            Allow("app.models.*"),
            Allow("app.orchestration.*"),
            Allow("app.db"),
            Allow("app.schedules"),
            Allow("app.metrics"),
            *LEAVES,
        ),
        never=("flask", "redis", "rq"),
    ),
    Layer(
        "app/blueprints/api",
        ("app.blueprints.api.*",),
        (
            Allow("app.services.*"),
            Allow("app.schemas.*"),
            Allow("app.extensions"),
            Allow("app.metrics"),
            *LEAVES,
        ),
    ),
    Layer(
        "app/blueprints/ui",
        ("app.blueprints.ui.*",),
        (Allow("app.services.*"), Allow("app.schemas.*"), Allow("app.extensions"), *LEAVES),
    ),
    Layer("app/blueprints", ("app.blueprints",)),
    # The counters services and API views bump; flask only inside its request hooks.
    Layer(
        "app/metrics.py",
        ("app.metrics",),
        third_party=("prometheus_client",),
        lazy_third_party=True,
    ),
    Layer("app/extensions.py", ("app.extensions",), (Allow("app.schemas.*"), *LEAVES)),
    Layer(
        "app/migrations/", ("app.migrations.*",), (Allow("app.models.*"), Allow("app.db"), *LEAVES)
    ),
    Layer(
        "the server's assembly (create_app, app.cli, app.embedded, app.serving, app.security, "
        "/metrics, log format)",
        (
            "app",
            "app.__main__",
            "app.cli",
            "app.embedded",
            "app.serving",
            "app.security",
            "app.prefect_ui",
            "app.blueprints.metrics",
            "app.logformat",
        ),
        (Allow("app.*"),),
    ),
    Layer(
        "workers/", ("workers.*",), (Allow("app.config"), Allow("app.db"), Allow("app.services.*"))
    ),
    Layer("client/", ("client.*",), third_party=("httpx",), lazy_third_party=True),
    Layer("wsgi.py (entry module)", ("wsgi",), (Allow("app"), Allow("app.serving"))),
    Layer(
        "orion_cli.py (entry module)",
        ("orion_cli",),
        (Allow("app.cli", lazy=True), Allow("client.cli.*", lazy=True)),
    ),
)
# Per-module additions to a layer's row (DESIGN.md's stated exceptions and our decisions).
EXTRA = {
    # DESIGN.md §2: the ephemeral transport builds the app in-process, imported lazily.
    "client.api.ephemeral": (Allow("app.*", lazy=True),),
}
# Third-party packages allowed at module level in one part of a layer.
EXTRA_THIRD_PARTY = {
    "client.cli": ("click",),
    # Blocks are pydantic models (DESIGN.md §7); their packages load them on first use, so
    # `import client` never imports pydantic.
    "client.blocks": ("pydantic", "pydantic_core"),
    "client.infrastructure": ("pydantic",),
}

# Imports that break a rule today, each waiting for its fix: (importing module, imported).
KNOWN_EXCEPTIONS = {
    # /api/admin/version reads `app.__version__` from the package that builds the app.
    ("app.blueprints.api.root", "app"): "the server version from app/__init__.py",
}


def matches(pattern, module):
    if pattern.endswith(".*"):
        base = pattern[:-2]
        return module == base or module.startswith(base + ".")
    return module == pattern


@dataclasses.dataclass(frozen=True)
class Import:
    source: str  # the importing module
    path: Path
    line: int
    target: str  # the imported module (ours), or the top-level package (third party)
    lazy: bool  # inside a function


@dataclasses.dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    source: str
    target: str
    rule: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.source} imports {self.target}: {self.rule}"


def module_name(root, path):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root):
    """Every Python module of ours under ``root``: the packages and the entry modules."""
    for package in PACKAGES:
        yield from sorted((root / package).rglob("*.py"))
    for name in ENTRY_MODULES:
        if (root / f"{name}.py").exists():
            yield root / f"{name}.py"


def is_ours(module):
    return module.split(".")[0] in (*PACKAGES, *ENTRY_MODULES)


def _resolve(root, module):
    """``module`` if it is a module or package of ours on disk, else its parent (a name
    imported from a module: ``from app.models import utcnow`` imports ``app.models``)."""
    path = root.joinpath(*module.split("."))
    if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
        return module
    return module.rpartition(".")[0]


def imports_of(root, path):
    """The imports in ``path``, with the ones inside functions marked lazy."""
    source = module_name(root, path)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = (
                    [f"{base}.{alias.name}" for alias in child.names] if is_ours(base) else [base]
                )
            else:
                visit(child, inner)
                continue
            for name in names:
                target = _resolve(root, name) if is_ours(name) else name.split(".")[0]
                found.append(Import(source, path.relative_to(root), child.lineno, target, lazy))

    visit(tree, False)
    return found


def layer_of(module):
    for layer in LAYERS:
        if any(matches(pattern, module) for pattern in layer.holds):
            return layer
    return None


def check(imp):
    """The rule ``imp`` breaks, or None."""
    layer = layer_of(imp.source)
    if layer is None:
        return "the module is in no layer of tests/test_layers.py (add it to a row)"
    if is_ours(imp.target):
        if imp.source.split(".")[0] == "app" and imp.target.split(".")[0] in ("client", "workers"):
            return (
                f"{layer.name} is server code: app never imports client or workers "
                "(it enqueues jobs by dotted path; the client's commands live in client)"
            )
        target_layer = layer_of(imp.target)
        if target_layer is layer:
            return None
        allowed = (*layer.may_import, *EXTRA.get(imp.source, ()))
        for allow in allowed:
            if matches(allow.pattern, imp.target):
                if allow.lazy and not imp.lazy:
                    return (
                        f"{layer.name} may import {allow.pattern} only inside a function (lazily)"
                    )
                return None
        may = ", ".join(a.pattern + (" (lazily)" if a.lazy else "") for a in allowed)
        return f"{layer.name} may import {may or 'nothing of ours'}, not {imp.target}"
    if imp.target in sys.stdlib_module_names or imp.target == "__future__":
        return None
    if imp.target in layer.never:
        return f"{layer.name} never imports {imp.target}"
    if layer.third_party is None:
        return None
    extra = next(
        (
            names
            for prefix, names in EXTRA_THIRD_PARTY.items()
            if matches(prefix + ".*", imp.source)
        ),
        (),
    )
    if imp.target in (*layer.third_party, *extra):
        return None
    if layer.lazy_third_party and imp.lazy:
        return None
    allowed = ", ".join((*layer.third_party, *extra)) or "the standard library only"
    where = (
        " (anything else inside a function, as an optional extra)" if layer.lazy_third_party else ""
    )
    return f"{layer.name} may import {allowed}{where}, not {imp.target} at module level"


def violations(root):
    """Every import under ``root`` that breaks a rule, with the ones of KNOWN_EXCEPTIONS
    returned apart: ``(violations, known exceptions seen)``."""
    found, known = [], set()
    for path in source_files(root):
        for imp in imports_of(root, path):
            rule = check(imp)
            if rule is None:
                continue
            key = (imp.source, imp.target)
            if key in KNOWN_EXCEPTIONS:
                known.add(key)
            else:
                found.append(Violation(imp.path, imp.line, imp.source, imp.target, rule))
    return found, known


def test_every_import_keeps_the_layers():
    found, known = violations(ROOT)
    assert not found, "imports that break DESIGN.md §2:\n" + "\n".join(map(str, found))
    gone = set(KNOWN_EXCEPTIONS) - known
    assert not gone, f"fixed, so remove them from KNOWN_EXCEPTIONS: {sorted(gone)}"


def test_every_module_has_a_layer():
    orphans = [
        module_name(ROOT, path)
        for path in source_files(ROOT)
        if layer_of(module_name(ROOT, path)) is None
    ]
    assert not orphans


def write_tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


# A small tree shaped like ours that keeps every rule.
CLEAN_TREE = {
    "app/__init__.py": "def create_app():\n    from app.services import flows\n",
    "app/states.py": "import enum\n",
    "app/db.py": "import peewee\n",
    "app/models/__init__.py": "from app.db import database\nfrom app.states import StateType\n",
    "app/services/__init__.py": "",
    "app/services/flows.py": "from app.models import Flow\nfrom . import runs\n",
    "app/services/runs.py": "",
    "client/__init__.py": "from client.api.client import get_client\n",
    "client/api/__init__.py": "",
    "client/api/client.py": "def get_client():\n    import httpx\n",
    "client/api/ephemeral.py": "def ephemeral_app():\n    from app import create_app\n",
    "workers/__init__.py": "",
    "workers/jobs.py": "from app.services import flows\n",
}


@pytest.fixture
def tree(tmp_path):
    write_tree(tmp_path, CLEAN_TREE)
    return tmp_path


def test_the_checker_passes_a_tree_that_keeps_the_rules(tree):
    assert violations(tree) == ([], set())


@pytest.mark.parametrize(
    "name, text, line, rule",
    [
        (
            "app/models/flows.py",
            "import datetime\n\nfrom app.services import flows\n",
            3,
            (
                "app/models/ may import app.db, app.states, app.exceptions, app.clock, "
                "not app.services"
            ),
        ),
        (
            "app/services/bad.py",
            "def f():\n    from client import get_client\n",
            2,
            "app/services/ is server code: app never imports client or workers",
        ),
        (
            "app/services/web.py",
            "from flask import request\n",
            1,
            "app/services/ never imports flask",
        ),
        (
            "app/states.py",
            "import enum\nimport peewee\n",
            2,
            (
                "app/states.py, app/exceptions.py, app/clock.py may import the standard library "
                "only, not peewee"
            ),
        ),
        (
            "client/api/objects.py",
            "from app.states import StateType\n",
            1,
            "client/ may import nothing of ours, not app.states",
        ),
        (
            "client/api/ephemeral.py",
            "from app import create_app\n",
            1,
            "client/ may import app.* only inside a function (lazily)",
        ),
        (
            "client/sdk/results.py",
            "import fsspec\n",
            1,
            (
                "client/ may import httpx (anything else inside a function, as an optional extra), "
                "not fsspec at module level"
            ),
        ),
        (
            "workers/cron.py",
            "from app.blueprints import api\n",
            1,
            "workers/ may import app.config, app.db, app.services.*, not app.blueprints",
        ),
        (
            "app/orphan/__init__.py",
            "import os\n",
            1,
            "the module is in no layer of tests/test_layers.py",
        ),
    ],
)
def test_the_checker_names_the_file_line_and_rule_of_a_wrong_import(tree, name, text, line, rule):
    write_tree(tree, {name: text})

    found, _ = violations(tree)

    assert len(found) == 1, found
    assert (found[0].path, found[0].line) == (Path(name), line)
    assert rule in str(found[0])
    assert str(found[0]).startswith(f"{name}:{line}: ")


def test_relative_and_lazy_imports_are_read(tree):
    write_tree(tree, {"app/models/runs.py": "def f():\n    from ..services import flows\n"})

    found, _ = violations(tree)

    assert [(v.source, v.target, v.line) for v in found] == [
        ("app.models.runs", "app.services.flows", 2)
    ]


def test_the_server_and_the_client_agree_on_state_types_and_api_version():
    import app
    from app.states import StateType as ServerStateType
    from client.api.client import API_VERSION
    from client.api.states import StateType as ClientStateType

    assert API_VERSION == app.API_VERSION
    assert [(t.name, t.value) for t in ClientStateType] == [
        (t.name, t.value) for t in ServerStateType
    ]
