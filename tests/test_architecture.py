"""Imports go one way: utils <- layers <- models <- data <- checkpoints <-
training, export, compression <- predict <- bench, search <- demo (see
docs/architecture.md).

Every module of the package is parsed (not imported) with ``ast``, so the
rules hold for imports in any function, however rarely it runs. The package
face ``trimzoo/__init__.py`` stands above every subpackage and may import
any of them.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "trimzoo")
# Function-local imports of trimzoo modules are for what is really optional
# (heavy or conditional); the package keeps fewer than this many.
MAX_LOCAL_IMPORTS = 10
# subpackage -> the subpackages it must never import.
FORBIDDEN = {
    "utils": ("layers", "models", "data", "checkpoints", "training",
              "export", "compression", "search", "bench", "demo", "predict"),
    "layers": ("models", "data", "checkpoints", "training", "export",
               "bench", "demo"),
    "models": ("data", "checkpoints", "training", "export", "bench", "demo"),
    "checkpoints": ("training", "export", "bench", "demo"),
    "data": ("checkpoints", "training", "export", "bench", "demo"),
    "compression": ("training", "export", "bench", "demo"),
    # Siblings at the top: cost counting lives beside the models
    # (models.costs), timing inputs beside the data (data.text_inputs).
    "search": ("bench", "demo"),
    "bench": ("search", "demo"),
    # The demo tells the story of the whole package, at the top.
    "predict": ("bench", "search", "demo"),
}


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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package):
    bad = [f"{path}:{line} imports {name}"
           for path, module, line, name, _ in IMPORTS
           if _subpackage(module) == package
           and _subpackage(name) in FORBIDDEN[package]]
    assert not bad, (
        f"trimzoo.{package} must not import "
        f"{', '.join(FORBIDDEN[package])}:\n" + "\n".join(bad))


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


def test_few_function_local_imports():
    # One per import statement, over the whole package.
    local = sorted({f"{path}:{line}" for path, _, line, _, is_local
                    in IMPORTS if is_local})
    assert len(local) < MAX_LOCAL_IMPORTS, (
        f"{len(local)} function-local trimzoo imports (the package keeps "
        f"fewer than {MAX_LOCAL_IMPORTS}; import at module level unless "
        "the import is really optional):\n" + "\n".join(local))
