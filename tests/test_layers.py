"""The package's shape: no import runs from a lower layer to a higher one, the layer table in
docs/architecture.md is the one scripts/import_graph.py checks, and no module grows past about 400 lines."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)

MAX_LINES = 400


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    g = import_graph.graph()
    assert "glide.pipeline" in g and "glide.samplers" in g["glide.pipeline"]  # the parser sees imports
    assert import_graph.back_edges(g) == []


def test_the_checker_sees_a_back_edge_and_lazy_imports(tmp_path):
    # A function-level import counts as much as a top-level one (the old clip -> official edge was one).
    src = "def f():\n    from ..official import hub\n"
    path = tmp_path / "probe.py"
    path.write_text(src)
    deps = import_graph.imports("glide.clip.probe", path, {"glide.official", "glide.official.hub"})
    assert deps == {"glide.official.hub"}
    assert import_graph.back_edges({"glide.clip.probe": deps}) == [("glide.clip.probe", "glide.official.hub")]


def test_every_module_has_a_layer_and_the_docs_show_the_same_order():
    for name in import_graph.modules():
        import_graph.layer_of(name)  # raises for a module in no layer
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (.+?) \|", doc, flags=re.M)
    documented = [(name, tuple(re.findall(r"`([\w.]+)`", mods))) for _, name, mods in sorted(rows, key=lambda r: int(r[0]))]
    assert documented == import_graph.LAYERS


def test_no_module_is_over_400_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in (ROOT / "glide").rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
