"""The layering of the design (imports point down only, the sandbox isolated both ways, no circles),
checked on the source of every module of the project (tests/ and bench/ excepted).

    config            → anything (it wires everything; the sandbox is mounted only in development)
    demo              → the product apps, core and the sandbox (synthetic data, development commands)
    withings          → measurements, cohorts, core
    messaging         → measurements, cohorts, core (beside withings: neither imports the other)
    api               → measurements, cohorts, core (the analysts' API; nothing imports it but config)
    measurements      → cohorts, core
    cohorts           → core
    core              → nothing of ours
    withings.sandbox  → nothing of ours but itself; only config and demo (and tests, bench) import it
    messaging.sandbox → the same, for the fake SMS gateway
    redcap_bridge     → measurements, cohorts, core (beside withings and messaging)
    redcap_bridge.sandbox → the same isolation, for the fake REDCap API

Every import counts for the arrows, also one inside a function or under ``TYPE_CHECKING``. For the
circles only the imports that run when a module is loaded count (module level, not under
``TYPE_CHECKING``): a function-level import is how a module reaches up to a task it queues.
A new top-level package must be given its place here before it can land.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = "withings.sandbox"
MESSAGING_SANDBOX = "messaging.sandbox"  # the fake SMS gateway, isolated like the Withings one
REDCAP_SANDBOX = "redcap_bridge.sandbox"  # the fake REDCap API, isolated the same way
#: Layer → the other layers it may import (every layer may import itself).
ALLOWED: dict[str, frozenset[str] | None] = {
    "config": None,  # anything
    "manage": None,
    "demo": frozenset(
        {"cohorts", "measurements", "withings", "messaging", SANDBOX, MESSAGING_SANDBOX, "core"}
    ),
    "withings": frozenset({"measurements", "cohorts", "core"}),
    "messaging": frozenset({"measurements", "cohorts", "core"}),
    "api": frozenset({"measurements", "cohorts", "core"}),  # the analysts' API, beside withings/messaging
    "redcap_bridge": frozenset({"measurements", "cohorts", "core"}),
    "measurements": frozenset({"cohorts", "core"}),
    "cohorts": frozenset({"core"}),
    "core": frozenset(),
    SANDBOX: frozenset(),
    MESSAGING_SANDBOX: frozenset(),
    REDCAP_SANDBOX: frozenset(),
}
NOT_SCANNED = frozenset({"tests", "bench"})


@dataclass(frozen=True)
class Import:
    target: str  # a module of ours
    line: int
    at_load: bool  # runs when the importing module is loaded


def project_modules(root: Path) -> tuple[dict[str, Path], list[str]]:
    """Every module of ours under `root` (dotted name → file), and the top-level names no layer owns."""
    modules: dict[str, Path] = {}
    unknown = []
    tops = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    for top in tops:
        if top.name in NOT_SCANNED:
            continue
        if top.is_file() and top.suffix == ".py":
            files = [top]
        elif top.is_dir() and (top / "__init__.py").is_file():
            files = sorted(top.rglob("*.py"))
        else:
            continue
        if top.stem not in ALLOWED:
            unknown.append(top.stem)
            continue
        for path in files:
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules, unknown


def layer_of(module: str) -> str:
    for sandbox in (SANDBOX, MESSAGING_SANDBOX, REDCAP_SANDBOX):
        if module == sandbox or module.startswith(sandbox + "."):
            return sandbox
    return module.split(".")[0]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours `name` refers to (the longest known prefix), None when it is not ours."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module):
    """(node, at_load) for every import statement of the module."""

    def visit(node: ast.AST, at_load: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, at_load
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), False)
                for statement in child.orelse:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), at_load)
            else:
                yield from visit(child, at_load)

    yield from visit(tree, True)


def module_imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, at_load in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # `from package import submodule` imports the submodule; `from module import name`, the module.
            names = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                for alias in node.names
            ]
        targets = {_resolve(name, modules) for name in names} - {None, module}
        found += [Import(target, node.lineno, at_load) for target in sorted(targets)]
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(components)


def layer_violations(root: Path) -> list[str]:
    modules, unknown = project_modules(root)
    violations = [
        f"{name}: a top-level package no layer owns (give it a place in tests/test_layers.py)"
        for name in unknown
    ]
    graph: dict[str, set[str]] = {}
    for module, path in sorted(modules.items()):
        source = layer_of(module)
        allowed = ALLOWED[source]
        for found in module_imports(module, path, modules):
            target = layer_of(found.target)
            if allowed is not None and target != source and target not in allowed:
                where = path.relative_to(root).as_posix()
                violations.append(
                    f"{where}:{found.line}: {module} ({source}) imports {found.target} ({target})"
                )
            if found.at_load:
                graph.setdefault(module, set()).add(found.target)
    violations += [f"import circle: {' ⇄ '.join(circle)}" for circle in _circles(graph)]
    return violations


def test_the_project_imports_point_down_only_and_never_in_a_circle():
    violations = layer_violations(ROOT)
    assert violations == [], "layering violations (see tests/test_layers.py):\n" + "\n".join(violations)


def test_the_scan_sees_every_app_and_the_sandbox():
    modules, unknown = project_modules(ROOT)
    assert unknown == []
    assert {layer_of(m) for m in modules} == set(ALLOWED)
    assert "withings.sandbox.generator" in modules
    assert "cohorts.migrations.0001_initial" in modules


# The checker itself, on a synthetic project.


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")
    return root


CLEAN = {
    "core/bulk.py": "import django\n",
    "cohorts/models.py": "from core import bulk\n",
    "cohorts/services.py": "from .models import x\nfrom . import models\n",
    "measurements/services.py": "from cohorts.services import y\nfrom core.bulk import z\n",
    "withings/tasks.py": "from measurements import services\n",
    "withings/services/link.py": "from cohorts.models import p\n\ndef later():\n    from ..tasks import t\n",
    "withings/sandbox/generator.py": "import random\nfrom . import state\n",
    "withings/sandbox/state.py": "import json\n",
    "demo/seed.py": "from withings.sandbox.generator import g\nfrom measurements.services import s\n",
    "config/urls.py": "from demo import seed\nimport withings.sandbox\n",
    "tests/test_x.py": "from withings.sandbox import state\n",
    "bench/run.py": "import withings.sandbox.generator\n",
    "manage.py": "import os\n",
}


def test_checker_passes_a_project_that_follows_the_layers(tmp_path):
    assert layer_violations(_write(tmp_path, CLEAN)) == []


def test_checker_reports_each_upward_arrow_with_its_place(tmp_path):
    root = _write(
        tmp_path,
        {
            **CLEAN,
            "cohorts/services.py": "from .models import x\n\ndef f():\n"
            "    from measurements.services import s\n",
            "core/bulk.py": "from cohorts import models\n",
            "measurements/services.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from withings.tasks import t\n",
        },
    )
    assert layer_violations(root) == [
        "cohorts/services.py:4: cohorts.services (cohorts) imports measurements.services (measurements)",
        "core/bulk.py:1: core.bulk (core) imports cohorts.models (cohorts)",
        "measurements/services.py:3: measurements.services (measurements) imports withings.tasks (withings)",
        "import circle: cohorts.models ⇄ core.bulk",  # cohorts.models imports core.bulk at load
    ]


def test_checker_keeps_the_sandbox_isolated_both_ways(tmp_path):
    root = _write(
        tmp_path,
        {
            **CLEAN,
            "withings/sandbox/state.py": "from django.conf import settings\nfrom withings import tasks\n",
            "measurements/demo.py": "from withings.sandbox.generator import bp_group\n",
            "withings/client.py": "def f():\n    import withings.sandbox.state\n",
        },
    )
    assert layer_violations(root) == [
        "measurements/demo.py:1: measurements.demo (measurements) imports withings.sandbox.generator "
        "(withings.sandbox)",
        "withings/client.py:2: withings.client (withings) imports withings.sandbox.state (withings.sandbox)",
        "withings/sandbox/state.py:2: withings.sandbox.state (withings.sandbox) imports withings.tasks "
        "(withings)",
    ]


def test_checker_reports_circles_of_load_time_imports_only(tmp_path):
    root = _write(
        tmp_path,
        {
            **CLEAN,
            "withings/tasks.py": "from .services.link import connection_link\n",
            "withings/services/link.py": "from ..webhook import url\n",
            "withings/webhook.py": "from . import tasks\n",
            # function-level and TYPE_CHECKING imports back up break no load, so they make no circle
            "cohorts/models.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .services import s\n",
            "core/bulk.py": "def f():\n    from core import crypto\n",
            "core/crypto.py": "from . import bulk\n",
        },
    )
    assert layer_violations(root) == [
        "import circle: withings.services.link ⇄ withings.tasks ⇄ withings.webhook",
    ]


def test_checker_refuses_a_package_without_a_layer(tmp_path):
    root = _write(tmp_path, {**CLEAN, "research/services.py": "from cohorts import models\n"})
    assert layer_violations(root) == [
        "research: a top-level package no layer owns (give it a place in tests/test_layers.py)"
    ]
