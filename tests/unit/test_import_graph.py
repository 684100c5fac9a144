"""No module of the repository imports itself through others: every import (module level or inside a
function) between the repository's own modules, as a graph, has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# where the repository's importable packages live (the folders on its PYTHONPATH)
SOURCE_ROOTS = (ROOT / "layers" / "core", ROOT / "dev")
# code that is imported as scripts or by path: checked by its own imports of the packages above
SCRIPT_FOLDERS = (ROOT / "functions", ROOT / "benchmarks", ROOT / "scripts", ROOT / "sagemaker")


def module_name(path: Path, source_root: Path) -> str:
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Every module of the repository's packages, by dotted name."""
    modules = {}
    for source_root in SOURCE_ROOTS:
        for path in source_root.rglob("*.py"):
            if "__pycache__" not in path.parts:
                modules[module_name(path, source_root)] = path
    return modules


def imported_modules(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The repository's modules that ``path`` (module ``name``) imports, anywhere in its body.
    ``from package import thing`` counts as importing ``package.thing`` where that is a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    known = package_modules()
    return {name: imported_modules(path, name, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_repository_imports_itself_through_others():
    assert cycles(import_graph()) == []


# the adapters: the HTTP API, AWS, payments (Stripe), and the command line (which drives them)
ADAPTERS = ("alphacut.api", "alphacut.aws", "alphacut.billing", "alphacut.cli")


def layering_faults(graph: dict[str, set[str]]) -> list[str]:
    """Imports against the layers: the image domain (every alphacut module outside the adapters)
    imports no adapter, and the AWS adapters nothing of the HTTP API nor of billing (billing uses
    AWS's adapters, not the other way round)."""

    def within(name: str, package: str) -> bool:
        return name == package or name.startswith(package + ".")

    faults = []
    for module, targets in sorted(graph.items()):
        if not within(module, "alphacut"):
            continue
        domain = not any(within(module, adapter) for adapter in ADAPTERS)
        for target in sorted(targets):
            if domain and any(within(target, adapter) for adapter in ADAPTERS):
                faults.append(f"{module} (image domain) imports {target}")
            elif within(module, "alphacut.aws") and (
                within(target, "alphacut.api") or within(target, "alphacut.billing")
            ):
                faults.append(f"{module} (AWS adapter) imports {target}")
    return faults


def test_the_image_domain_imports_no_adapter_and_aws_nothing_of_the_api():
    assert layering_faults(import_graph()) == []


def test_the_layering_check_names_a_domain_module_that_imports_an_adapter():
    graph = {
        "alphacut.matte": {"alphacut.aws.ledger.usage"},
        "alphacut.pipeline": {"alphacut.billing.purchases"},
        "alphacut.aws.tasks": {"alphacut.api.app"},
        "alphacut.aws.ledger.credits": {"alphacut.billing.settings"},
        "alphacut.cli": {"alphacut.aws.keys.admin"},
        "alphacut.billing.purchases": {"alphacut.aws.ledger.credits"},
    }
    assert layering_faults(graph) == [
        "alphacut.aws.ledger.credits (AWS adapter) imports alphacut.billing.settings",
        "alphacut.aws.tasks (AWS adapter) imports alphacut.api.app",
        "alphacut.matte (image domain) imports alphacut.aws.ledger.usage",
        "alphacut.pipeline (image domain) imports alphacut.billing.purchases",
    ]


# alphacut.aws's packages, each with the packages it may import (besides itself and the shared modules
# at alphacut.aws's top: clients, transactions, objects, secrets, preflight, which import no package)
AWS_PACKAGES: dict[str, set[str]] = {
    "ledger": set(),
    "callbacks": set(),
    "keys": {"ledger"},
    "tasks": {"ledger", "callbacks"},
    "billing": {"ledger", "keys"},
}


def aws_package(module: str) -> str | None:
    """The alphacut.aws package a module is in ("" for the shared modules at its top; None: outside)."""
    if not module.startswith("alphacut.aws."):
        return None if module != "alphacut.aws" else ""
    part = module.split(".")[2]
    return part if part in AWS_PACKAGES else ""


def aws_layering_faults(graph: dict[str, set[str]]) -> list[str]:
    """Imports between alphacut.aws's packages against ``AWS_PACKAGES``: none runs back up a layer
    (a shared module into a package, the ledger into keys, keys into tasks...) and none goes to a
    package not named."""
    faults = []
    for module, targets in sorted(graph.items()):
        source = aws_package(module)
        if source is None:
            continue
        for target in sorted(targets):
            into = aws_package(target)
            if not into or into == source:  # outside alphacut.aws, a shared module, or its own package
                continue
            if source == "" or into not in AWS_PACKAGES[source]:
                faults.append(f"{module} ({source or 'shared'}) imports {target} ({into})")
    return faults


def test_each_aws_package_imports_only_the_packages_below_it():
    assert aws_layering_faults(import_graph()) == []


def test_aws_has_no_package_of_more_than_a_dozen_modules_and_every_module_in_a_named_place():
    known = package_modules()
    by_package: dict[str, list[str]] = {}
    for name in known:
        if name.startswith("alphacut.aws.") and name.count(".") == 3:
            by_package.setdefault(name.split(".")[2], []).append(name)
    packages = {
        name.split(".")[2] for name in known if name.startswith("alphacut.aws.") and name.count(".") >= 3
    }
    assert packages == set(AWS_PACKAGES)  # a new package is given its place in the layers above
    assert max(len(modules) for modules in by_package.values()) <= 12
    assert len([n for n in known if n.startswith("alphacut.aws.") and n.count(".") == 2]) <= 12


def test_the_aws_layering_check_names_an_import_that_runs_back_up():
    graph = {
        "alphacut.aws.clients": {"alphacut.aws.ledger.usage"},
        "alphacut.aws.ledger.usage": {"alphacut.aws.keys.store", "alphacut.aws.clients"},
        "alphacut.aws.keys.store": {"alphacut.aws.ledger.plans", "alphacut.aws.keys.admin"},
        "alphacut.aws.tasks.end": {"alphacut.aws.billing.mailbox", "alphacut.aws.callbacks.queue"},
        "alphacut.api.app": {"alphacut.aws.tasks.end"},
    }
    assert aws_layering_faults(graph) == [
        "alphacut.aws.clients (shared) imports alphacut.aws.ledger.usage (ledger)",
        "alphacut.aws.ledger.usage (ledger) imports alphacut.aws.keys.store (keys)",
        "alphacut.aws.tasks.end (tasks) imports alphacut.aws.billing.mailbox (billing)",
    ]


def test_the_cycle_check_finds_a_circle_of_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_import_graph_sees_imports_made_inside_functions(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from alphacut import matte\n    return matte\n")
    known = {"alphacut": tmp_path, "alphacut.matte": tmp_path, "late": module}
    assert imported_modules(module, "late", known) == {"alphacut.matte"}


@pytest.mark.parametrize("folder", SCRIPT_FOLDERS, ids=lambda p: p.name)
def test_scripts_import_only_modules_that_exist(folder):
    """A script's imports of the packages resolve: a module deleted from a package breaks no script."""
    known = package_modules()
    roots = {name.split(".")[0] for name in known}
    missing = []
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and not node.level
                and node.module.split(".")[0] in roots
                and node.module not in known
            ):
                missing.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert missing == []
