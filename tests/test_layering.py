"""The package's layering: no import cycle (imports inside functions included), stages that
import nothing from the package root, renderers that read only the records."""
import ast
import pathlib

import derive

PACKAGE = pathlib.Path(derive.__file__).parent


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules) -> dict[str, set[str]]:
    """Each module's imports of the package's modules, wherever in the module they are; ``from
    .. import x`` of an attribute of a package is an import of that package."""
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    graph[name].add(full if full in modules else target)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names}
        graph[name] &= set(modules)
        graph[name].discard(name)
    return graph


def _cycle(graph):
    """A cycle of the graph, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
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


def test_no_import_cycle_lazy_imports_included():
    assert _cycle(_imports(_modules())) is None


def test_the_checker_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_stages_import_nothing_from_the_package_root():
    graph = _imports(_modules())
    stages = ("derive.codegen", "derive.render", "derive.check", "derive.rules", "derive.parse",
              "derive.derivations", "derive.records", "derive.auto", "derive.evaluation")
    assert sorted(name for name, imports in graph.items()
                  if name.startswith(stages) and "derive" in imports) == []


def test_renderers_read_only_the_records():
    graph = _imports(_modules())
    for name in ("derive.render.latex", "derive.render.markdown", "derive.render.text"):
        assert "derive.rules" not in graph[name], name


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
