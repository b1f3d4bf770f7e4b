"""The package's shape: no import cycle between its modules, and no test of a model's class outside
the backends (a loaded variant is used through its Runtime only)."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "quantbench"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from . import x` names a submodule
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(files)) for name, path in files.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert graph["quantbench.jobs.evaluate"] >= {"quantbench.tasks", "quantbench.artifacts"}  # the walker sees imports
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_model_classes_are_tested_only_inside_the_backends():
    model_class = re.compile(r"isinstance\([^)]*(Module|Model|Runtime|Llama|PreTrained)")
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if "methods" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if model_class.search(line)]
    assert offenders == []


def test_workflow_scripts_that_measure_energy_run_only_as_main():
    """Zeus starts its RAPL pollers with multiprocessing's spawn, which re-imports the main module: a job
    script whose work ran at import would run again in every poller (and truncate its own log)."""
    scripts = PACKAGE.parents[1] / "workflow" / "scripts"
    measuring = [p for p in scripts.glob("*.py")
                 if re.search(r"\bsurviving_crashes\((quantize|evaluate|benchmark), plan\.received\(", p.read_text())]
    assert {p.stem for p in measuring} == {"quantize", "evaluate", "benchmark"}
    for path in measuring:
        body = ast.parse(path.read_text()).body
        loose = [node.lineno for node in body if not (
            isinstance(node, (ast.Import, ast.ImportFrom)) or
            (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) or
            (isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"))]
        assert loose == [], f"{path.name}: statements outside `if __name__ == '__main__':` at lines {loose}"
