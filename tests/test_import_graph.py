"""The package's imports form no cycle (the web layer used to import in a circle), the MQTT bridge does not
depend on the web page, and route handlers keep their own names through the guard plugin."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

EDGE = REPO_ROOT / "edge"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """edge.* modules imported anywhere in the file (a late import inside a function still makes a circle)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("edge")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("edge"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    """Each edge module and the edge modules it imports."""
    files = sorted(EDGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    graph = {module_name(p): imports_of(p, modules) & modules for p in files}
    assert "edge.web.pages_admin" in graph["edge.web.app"]          # the graph is really read
    return graph


def test_edge_has_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_mqtt_does_not_import_the_web_package():
    """Home Assistant works without the admin page: importing edge.web.* would pull in Bottle, cheroot and
    every page for a shared helper (the rate limit used to live there)."""
    graph = import_graph()
    assert "edge.mqtt.discovery" in graph["edge.mqtt.remote"]        # the package is really read
    offending = sorted(f"{module} -> {target}" for module in graph if in_package(module, "edge.mqtt")
                       for target in reachable(graph, module) if in_package(target, "edge.web"))
    assert offending == [], "edge.mqtt imports the web package: " + "; ".join(offending)


def test_routes_keep_their_handlers_names(tmp_path):
    from web_fixtures import make_backend

    from edge.web import create_app

    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=4)
    app = create_app(cfg, store=store, log=log, engine=None)
    names = {route.rule: route.call.__name__ for route in app.routes if route.method == "GET"}
    assert names["/settings"] == "settings" and names["/log"] == "access_log" and names["/home"] == "home"
