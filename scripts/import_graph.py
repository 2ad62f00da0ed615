"""Print glide's module import graph, layer by layer, and any import that runs from a lower layer up.

    python scripts/import_graph.py          # text: each layer, its modules and what each imports
    python scripts/import_graph.py --layers # which layer imports which (module counts), the one-screen view
    python scripts/import_graph.py --sizes  # lines per module, by layer
    python scripts/import_graph.py --dot    # Graphviz DOT (render with: dot -Tsvg -o graph.svg)

Imports are read with `ast` from the source, without importing anything, and include the imports inside
functions (the lazy ones that keep `glide --help` free of torch). LAYERS below is the one statement of the
order; docs/architecture.md shows it and tests/test_layers.py checks both the code and that page against it.
Exits 1 if a module imports from a higher layer.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "glide"

# Lowest first. A module may import from its own layer and those below it, never from one above. A name
# stands for a module or a whole subpackage; the longest matching name decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("glide.errors", "glide.defaults", "glide.runtime", "glide.files", "glide.validation")),
    ("formats", ("glide.config", "glide.checkpoint", "glide.keys", "glide.images", "glide.text")),
    ("maths", ("glide.diffusion", "glide.models")),
    ("sampling", ("glide.samplers", "glide.guidance", "glide.hooks", "glide.editing")),
    ("clip", ("glide.clip",)),
    ("official", ("glide.official",)),
    ("pipeline", ("glide.loading", "glide.pipeline", "glide.pipeline_edits")),
    ("workflows", ("glide.data", "glide.training", "glide.evaluation", "glide.compose")),
    ("apps", ("glide.web", "glide.rate")),
    ("entry", ("glide", "glide.cli", "glide.__main__")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The glide modules that `name` imports anywhere in its source (`from pkg import sub` counts as sub)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import glide.x.y` of an attribute: the module that holds it
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def layer_of(name: str) -> int:
    best, level = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    if level is None:
        raise SystemExit(f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return level


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def back_edges(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a lower layer to a higher one."""
    return sorted((a, b) for a, deps in g.items() for b in deps if layer_of(b) > layer_of(a))


def text(g: dict[str, set[str]]) -> str:
    lines = []
    for i, (layer, _) in reversed(list(enumerate(LAYERS))):
        lines.append(f"{i} {layer}")
        for name in sorted(m for m in g if layer_of(m) == i):
            lines.append(f"    {name} -> {', '.join(sorted(g[name])) or '-'}")
    bad = back_edges(g)
    lines.append(f"back-edges: {len(bad)}" + "".join(f"\n    {a} -> {b}" for a, b in bad))
    return "\n".join(lines)


def layers(g: dict[str, set[str]]) -> str:
    lines = []
    for i, (layer, _) in reversed(list(enumerate(LAYERS))):
        mods = [m for m in g if layer_of(m) == i]
        below: dict[int, int] = {}
        for m in mods:
            for j in {layer_of(d) for d in g[m]} - {i}:
                below[j] = below.get(j, 0) + 1
        uses = ", ".join(f"{LAYERS[j][0]} ({n})" for j, n in sorted(below.items(), reverse=True)) or "-"
        lines.append(f"{i} {layer:10s} {len(mods):3d} modules -> {uses}")
    lines.append(f"back-edges: {len(back_edges(g))}")
    return "\n".join(lines)


def sizes(g: dict[str, set[str]]) -> str:
    paths = modules()
    lines = []
    for i, (layer, _) in reversed(list(enumerate(LAYERS))):
        counts = {m: len(paths[m].read_text(encoding="utf-8").splitlines()) for m in g if layer_of(m) == i}
        lines.append(f"{i} {layer}: {sum(counts.values())} lines")
        lines += [f"    {n:4d} {m}" for m, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def dot(g: dict[str, set[str]]) -> str:
    out = ["digraph glide {", "  rankdir=BT; node [shape=box, fontsize=10];"]
    for i, (layer, _) in enumerate(LAYERS):
        out.append(f'  subgraph cluster_{i} {{ label="{i} {layer}"; rank=same;')
        out += [f'    "{m}";' for m in sorted(g) if layer_of(m) == i]
        out.append("  }")
    for a in sorted(g):
        for b in sorted(g[a]):
            style = ' [color=red, penwidth=2]' if layer_of(b) > layer_of(a) else ""
            out.append(f'  "{a}" -> "{b}"{style};')
    out.append("}")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    view = p.add_mutually_exclusive_group()
    view.add_argument("--dot", action="store_true", help="print Graphviz DOT instead of text")
    view.add_argument("--layers", action="store_true", help="print only which layer imports which")
    view.add_argument("--sizes", action="store_true", help="print the lines of each module, by layer")
    args = p.parse_args()
    g = graph()
    print(dot(g) if args.dot else layers(g) if args.layers else sizes(g) if args.sizes else text(g))
    return 1 if back_edges(g) else 0


if __name__ == "__main__":
    sys.exit(main())
