"""The house shows the flow: one package per stage, imports only pointing down, no circles.

Stages, lowest first: the core (config, lake, generations, sql, failures, readonly) <- parse <-
fetch; parse <- detect <- report <- pipeline <- intraday (the day so far) <- cli. fetch and detect
are siblings and never import each other; simulate stands apart (it writes logs; nothing of the
pipeline reads it). Every import counts, also those inside functions, since a lazy import is still
an arrow.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mmw_tasks"

# what each room may import, besides itself
ALLOWED = {
    "core": {"core"},
    "parse": {"core"},
    "fetch": {"core", "parse"},
    "detect": {"core"},
    "report": {"core", "parse", "detect"},
    "pipeline": {"core", "parse", "fetch", "detect", "report"},
    "deploy": {"core"},
    "dagtest": {"core"},  # follows an `airflow dags test` run for mmw demo; imports nothing of ours
    "intraday": {"core", "parse", "fetch", "detect", "report", "pipeline"},
    "cli": {"core", "parse", "fetch", "detect", "report", "pipeline", "intraday", "simulate", "dagtest"},
    "simulate": set(),
}
CORE = {"config", "lake", "generations", "sql", "failures", "readonly"}  # the last two need only config and lake


def room(module: str) -> str:
    parts = module.split(".")[1:]  # without "mmw_tasks"
    if not parts or parts[0] in CORE:
        return "core"
    if parts[0] == "__main__":
        return "cli"
    return parts[0]


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = p
    return out


def imports() -> set[tuple[str, str]]:
    """(importer, imported) for every mmw_tasks module, down to the module imported."""
    mods = modules()
    edges = set()
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mmw_tasks"):
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module for a in node.names
                ]
                targets = [t for t in targets if t != "mmw_tasks.parse._kernels"] or [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: relative import; write the module's whole name")
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("mmw_tasks")]
            edges |= {(name, t) for t in targets if t != name}
    return edges


def test_stage_packages_exist_and_nothing_parse_like_is_left_at_the_top():
    top = {p.name for p in PKG.iterdir() if not p.name.startswith((".", "_"))}
    assert {"fetch", "parse", "detect", "report", "simulate"} <= top
    assert not [
        n
        for n in top
        if n.startswith("parse_")
        or n.endswith(".py")
        and n[:-3] not in CORE | {"pipeline", "intraday", "cli", "deploy", "dagtest"}
    ], sorted(top)
    assert (PKG / "parse" / "csrc").is_dir()


def test_imports_point_down_the_stages():
    wrong = sorted(f"{a} -> {b}" for a, b in imports() if room(a) != room(b) and room(b) not in ALLOWED[room(a)])
    assert not wrong, (
        "imports against the order core <- parse <- fetch, parse <- detect <- report <- pipeline <- intraday <- cli:\n"
        + "\n".join(wrong)
    )


def test_no_import_circles():
    graph: dict[str, set[str]] = {}
    for a, b in imports():
        graph.setdefault(a, set()).add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_import_test_would_catch_a_wrong_arrow():
    """The rules themselves: a parse module importing fetch, or detect importing report, is wrong."""
    assert "fetch" not in ALLOWED[room("mmw_tasks.parse.ingest")]
    assert "report" not in ALLOWED[room("mmw_tasks.detect.outbreak")]
    assert "detect" not in ALLOWED[room("mmw_tasks.fetch.sources")]
    assert room("mmw_tasks.lake") == "core" and room("mmw_tasks.parse.kernels") == "parse"


def test_mmw_tasks_never_imports_airflow():
    for name, path in modules().items():
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+airflow\b", text, re.M), name


def test_every_path_in_the_readme_layout_table_exists():
    """Each row's path, and the files it names inside that path, are there."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Layout") :]
    section = section[: section.index("\n## ", 4)]
    rows = [r for r in section.splitlines() if r.startswith("| `")]
    assert len(rows) >= 15, rows
    missing = []
    for row in rows:
        first, what = row.split("|")[1:3]
        base = ROOT / first.strip().strip("`")
        if not base.exists():
            missing.append(str(base.relative_to(ROOT)))
            continue
        inside = base if base.is_dir() else base.parent
        for name in re.findall(r"`([\w.-]+(?:/|\.(?:py|lock|in|md|toml)))`", what):
            if not (inside / name).exists():
                missing.append(str((inside / name).relative_to(ROOT)))
        missing += [link for link in re.findall(r"\]\(([^)]+)\)", what) if not (ROOT / link).exists()]
    assert not missing, f"README's layout table names paths that do not exist: {missing}"
