"""The import graph: no cycle, and no layer importing an upper one (imports inside functions included).

The one exception is the documented DataFrame convenience methods of the DAO
(``*_df``), which import :mod:`jobman_nb.frames` / :mod:`jobman_nb.timeline`
on first use so that the DAO itself needs no pandas.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jobman_nb

PACKAGE = Path(jobman_nb.__file__).parent
# Lower number = lower layer; a module may import only modules of its layer or below.
LAYERS = [
    {"jobman_nb.errors", "jobman_nb.vocabulary", "jobman_nb.pathmap", "jobman_nb.encode", "jobman_nb.causes",
     "jobman_nb._demo_logs", "jobman_nb._extras"},
    {"jobman_nb.dao"},  # every jobman_nb.dao.* module
    {"jobman_nb.frames", "jobman_nb._where", "jobman_nb.tables", "jobman_nb._scale"},
    {"jobman_nb.explore", "jobman_nb.stale", "jobman_nb.job_lineage", "jobman_nb.jobdirs"},
    {"jobman_nb.multi", "jobman_nb.analytics"},
    {"jobman_nb.timeline", "jobman_nb.export"},
    {"jobman_nb.demo", "jobman_nb.widgets"},
    {"jobman_nb", "jobman_nb.cli"},  # the package's names (and __version__), and the command line
]


TYPE_ONLY = "<if TYPE_CHECKING>"  # imports for annotations only: never run


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom, modules: set[str]) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        parts = parts if is_package else parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    # 'from .. import vocabulary' imports the module jobman_nb.vocabulary; 'from .frames import x', jobman_nb.frames
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_edges() -> list[tuple[str, str, str]]:
    """(importer, imported, the function importing it or '') for every import of a jobman_nb module."""
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    edges = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scopes: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for child in ast.walk(node):
                    scopes.setdefault(id(child), node.name)
            elif isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in ast.walk(node):
                    scopes.setdefault(id(child), TYPE_ONLY)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(module, path.name == "__init__.py", node, modules)
            else:
                continue
            for target in targets:
                if target in modules and target != module and target.startswith("jobman_nb"):
                    edges.append((module, target, scopes.get(id(node), "")))
    return sorted(set(edges))


def layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "jobman_nb" and module.startswith(name + ".")):
                return i
    raise AssertionError(f"{module} has no layer in tests/test_layers.py: add it to LAYERS")


def _allowed_upward(importer: str, imported: str, function: str) -> bool:
    return importer.startswith("jobman_nb.dao") and function.endswith("_df") and \
        imported in ("jobman_nb.frames", "jobman_nb.timeline")


def test_no_layer_imports_an_upper_one():
    upward = [(a, b, f) for a, b, f in import_edges()
              if layer(b) > layer(a) and not _allowed_upward(a, b, f)]
    assert not upward, "upward imports (importer, imported, in function): " + repr(upward)


def test_the_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for a, b, f in import_edges():
        if a.startswith(b + ".") or b.startswith(a + ".") or _allowed_upward(a, b, f) or f == TYPE_ONLY:
            continue  # a package and its own modules; the DAO's *_df methods; annotations
        graph.setdefault(a, set()).add(b)
    seen: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node)


def test_no_module_outside_dao_reaches_a_private_name_of_dao():
    reaches = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if module.startswith("jobman_nb.dao"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and "dao" in node.module.split("."):
                reaches += [(module, node.module, a.name) for a in node.names
                            if a.name.startswith("_") or node.module.split(".")[-1].startswith("_")]
            elif isinstance(node, ast.Attribute) and node.attr in (
                    "_get_orm", "_check_writable", "_execute_many", "_cursor", "_scope", "_connection_lock"):
                reaches.append((module, "attribute", node.attr))
    assert not reaches, reaches


def test_the_edges_are_found():
    edges = import_edges()
    assert ("jobman_nb.frames", "jobman_nb.vocabulary", "") in edges
    assert any(a == "jobman_nb.dao.sqlite_dao" and b == "jobman_nb.frames" and f == "query_ents_df"
               for a, b, f in edges)


def test_the_lineage_function_and_its_module_have_different_names(tmp_path):
    import importlib

    from jobman_nb.demo import make_history

    path = tmp_path / "d.sqlite"
    make_history(path, n_jobs=30, seed=1)
    with jobman_nb.open_db(path, read_only=True) as db:
        first = db.lineage()
        again = jobman_nb.lineage(db)  # still the function after db.lineage() imported its module
    assert callable(jobman_nb.lineage) and list(first["key"]) == list(again["key"])
    module = importlib.import_module("jobman_nb.job_lineage")
    assert module.lineage is jobman_nb.lineage and module.batch_jobs is jobman_nb.batch_jobs


def test_query_is_public():
    from jobman_nb.dao.query import Query

    assert jobman_nb.Query is Query and "Query" in jobman_nb.__all__
