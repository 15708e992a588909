"""The import rules of docs/architecture.md, every one of them:

    utils <- layers <- models <- data <- checkpoints <- training, export,
    compression <- predict, bench, search <- experiments, demo

A subpackage imports only from the steps to its left (so the packages on
one step never import each other), every subpackage has a place on the
line, there is no circle, the tokenizers import nothing else of the models,
and the few function-local imports each give their reason.

Every module of the package is parsed (not imported) with ``ast``, so the
rules hold for imports in any function, however rarely it runs. The package
face ``trimzoo/__init__.py`` stands outside the rules and may import any
subpackage.
"""

import ast
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "trimzoo")
# The steps of the line, lowest first: a subpackage (or top-level module)
# imports only from earlier steps, never from its own or a later one.
STEPS = (
    ("utils",),
    ("layers",),
    ("models",),
    ("data",),
    ("checkpoints",),
    ("training", "export", "compression"),
    ("predict", "bench", "search"),
    ("experiments", "demo"),
)
LEVEL = {name: level for level, names in enumerate(STEPS) for name in names}
# Function-local imports of trimzoo modules are for what is really optional
# (heavy or needed by one path only); the package keeps fewer than this
# many, each with a comment saying why.
MAX_LOCAL_IMPORTS = 5


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(ROOT))[:-len(".py")]
    parts = rel.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    for folder, _, files in os.walk(ROOT):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield _module_name(path), path


def _imported(node, module, is_package):
    """Absolute names of the modules (or module attributes) ``node``
    imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        parts = parts[:len(parts) - node.level + (1 if is_package else 0)]
        base = ".".join(parts + ([base] if base else []))
    # `from trimzoo import checkpoints` imports trimzoo.checkpoints.
    return [f"{base}.{alias.name}" for alias in node.names]


class _Imports(ast.NodeVisitor):
    def __init__(self, module, is_package):
        self.module, self.is_package = module, is_package
        self.depth = 0
        self.found = []  # (line, name, function-local)

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _import(self, node):
        for name in _imported(node, self.module, self.is_package):
            if name == "trimzoo" or name.startswith("trimzoo."):
                self.found.append((node.lineno, name, self.depth > 0))

    visit_Import = visit_ImportFrom = _import


def _all_imports():
    out = []
    for module, path in _modules():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        visitor = _Imports(module, path.endswith("__init__.py"))
        visitor.visit(tree)
        rel = os.path.relpath(path, os.path.dirname(ROOT))
        out += [(rel, module, line, name, local)
                for line, name, local in visitor.found]
    return out


IMPORTS = _all_imports()


def _subpackage(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_parser_sees_the_package():
    modules = dict(_modules())
    assert "trimzoo.models.backbone" in modules
    assert "trimzoo.layers" in modules
    # Known edges, so that an empty result cannot pass the rules below.
    edges = {(m, n) for _, m, _, n, _ in IMPORTS}
    assert ("trimzoo.models.backbone",
            "trimzoo.layers.encoder_block.EncoderBlock") in edges
    assert any(m.startswith("trimzoo.checkpoints") and
               n.startswith("trimzoo.models") for m, n in edges)


def _subpackages():
    """The subpackages and top-level modules of trimzoo."""
    names = set()
    for entry in os.listdir(ROOT):
        path = os.path.join(ROOT, entry)
        if entry.startswith(("_", ".")):
            continue
        if os.path.isdir(path) and os.path.exists(
                os.path.join(path, "__init__.py")):
            names.add(entry)
        elif entry.endswith(".py"):
            names.add(entry[:-len(".py")])
    return names


def test_every_subpackage_has_a_step():
    assert _subpackages() == set(LEVEL), (
        "Place every subpackage on one step of STEPS (and of the line in "
        "docs/architecture.md); unplaced: "
        f"{sorted(_subpackages() - set(LEVEL))}, gone: "
        f"{sorted(set(LEVEL) - _subpackages())}")


def _violations(imports):
    """``path:line imports name`` for every import of a subpackage from its
    own step (a neighbour) or a later one."""
    bad = []
    for path, module, line, name, _ in imports:
        source, target = _subpackage(module), _subpackage(name)
        if source is None or target is None or source == target:
            continue
        if LEVEL[target] >= LEVEL[source]:
            how = ("its neighbour on the same step"
                   if LEVEL[target] == LEVEL[source] else "a higher step")
            bad.append(f"{path}:{line} imports {name} ({target}: {how})")
    return bad


def test_the_rule_sees_upward_and_sideways_imports():
    fake = [("trimzoo/models/x.py", "trimzoo.models.x", 1,
             "trimzoo.training.loop.Trainer", False),
            ("trimzoo/bench/x.py", "trimzoo.bench.x", 2,
             "trimzoo.search.costs", True),
            ("trimzoo/search/x.py", "trimzoo.search.x", 3,
             "trimzoo.training.loop", False)]
    assert _violations(fake) == [
        "trimzoo/models/x.py:1 imports trimzoo.training.loop.Trainer "
        "(training: a higher step)",
        "trimzoo/bench/x.py:2 imports trimzoo.search.costs "
        "(search: its neighbour on the same step)"]


@pytest.mark.parametrize("package", sorted(LEVEL))
def test_imports_go_one_way_and_not_sideways(package):
    bad = _violations([i for i in IMPORTS if _subpackage(i[1]) == package])
    left = sorted(n for n in LEVEL if LEVEL[n] < LEVEL[package])
    allowed = ", ".join(left) if left else "nothing of trimzoo"
    assert not bad, (f"trimzoo.{package} imports only from {allowed}:\n"
                     + "\n".join(bad))


def _subpackage_graph():
    """``{subpackage: {imported subpackage: [where]}}`` over every import,
    function-local ones included; the package face is left out."""
    graph = {}
    for path, module, line, name, _ in IMPORTS:
        source, target = _subpackage(module), _subpackage(name)
        if source and target and source != target:
            graph.setdefault(source, {}).setdefault(target, []).append(
                f"{path}:{line} imports {name}")
    return graph


def _find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state = {}  # node -> "open" while on the path, "done" once left

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_find_cycle():
    assert _find_cycle({"a": {"b": []}, "b": {"c": []}}) is None
    assert _find_cycle({"a": {"b": []}, "b": {"c": []},
                        "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b": []}, "b": {"b": []}}) == ["b", "b"]


def test_no_import_cycle_between_subpackages():
    graph = _subpackage_graph()
    # Known edges, so that an empty graph cannot pass.
    assert "models" in graph["checkpoints"] and "layers" in graph["models"]
    cycle = _find_cycle(graph)
    assert cycle is None, (
        "Subpackages import each other in a circle: "
        + " -> ".join(cycle) + "\n" + "\n".join(
            where for a, b in zip(cycle, cycle[1:]) for where in graph[a][b]))


def test_tokenizers_do_not_import_the_backbone():
    bad = [f"{path}:{line} imports {name}"
           for path, module, line, name, _ in IMPORTS
           if module.startswith("trimzoo.models.tokenizers")
           and not name.startswith("trimzoo.models.tokenizers")
           and name.startswith("trimzoo.models")]
    assert not bad, "\n".join(bad)


def _has_reason(path, line):
    """Whether the import at ``path:line`` carries a ``#`` comment on its
    line or on the line above."""
    with open(os.path.join(os.path.dirname(ROOT), path),
              encoding="utf-8") as f:
        lines = f.read().splitlines()
    here, above = lines[line - 1], lines[line - 2] if line > 1 else ""
    return bool(re.search(r"#\s*\S", here)) or above.strip().startswith("#")


def test_few_function_local_imports_each_with_its_reason():
    # One per import statement, over the whole package.
    local = sorted({(path, line) for path, _, line, _, is_local
                    in IMPORTS if is_local})
    where = [f"{path}:{line}" for path, line in local]
    assert len(local) < MAX_LOCAL_IMPORTS, (
        f"{len(local)} function-local trimzoo imports (the package keeps "
        f"fewer than {MAX_LOCAL_IMPORTS}; import at module level unless "
        "the import is really optional):\n" + "\n".join(where))
    silent = [w for w, (path, line) in zip(where, local)
              if not _has_reason(path, line)]
    assert not silent, (
        "A function-local import says why it is local (a # comment on its "
        "line or the line above):\n" + "\n".join(silent))
