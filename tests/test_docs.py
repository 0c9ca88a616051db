"""The docs are tested like code.

* Every ```python block of every page under ``docs/`` runs; the blocks of one
  page share a namespace and run in order, so a page reads as one script.
  Their ``assert`` lines are the claims the prose makes.
* Every relative link and image between pages resolves (a file that exists,
  and for ``page.md#anchor`` a heading that exists).
* ``python -m minisegnet.viz DIR`` produces every figure the docs reference.
"""
import linecache
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

import minisegnet as msn

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
WITH_README = PAGES + [ROOT / "README.md"]          # pages whose code and links are checked

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def python_blocks(text):
    """The source of each ```python fence, in order."""
    return [body for lang, body in _FENCE.findall(text) if lang == "python"]


def strip_code(text):
    """The page without its fenced and inline code, where links are not links."""
    text = _FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    heading = re.sub(r"[`*]", "", heading).strip().lower()
    heading = re.sub(r"[^\w\- ]", "", heading)
    return heading.replace(" ", "-")


def relative_links(page):
    """(target, anchor) for every relative link or image on ``page``."""
    out = []
    for target in _LINK.findall(strip_code(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        out.append((path, anchor))
    return out


def referenced_figures():
    """Every file under docs/figures/ that some page shows or links."""
    names = set()
    for page in PAGES:
        for path, _ in relative_links(page):
            if path:
                resolved = (page.parent / path).resolve()
                if resolved.parent == (DOCS / "figures").resolve():
                    names.add(resolved.name)
    return sorted(names)


def test_there_is_a_course():
    names = {p.name for p in PAGES}
    assert "index.md" in names
    index = (DOCS / "index.md").read_text()
    linked = {Path(path).name for path, _ in relative_links(DOCS / "index.md") if path.endswith(".md")}
    missing = sorted(names - linked - {"index.md"})
    assert not missing, f"pages not reachable from docs/index.md: {missing}"
    assert "572" in index and "align_corners" in index


def test_each_course_page_points_to_its_neighbours_in_the_index():
    """The numbered list of docs/index.md is the course; page N says it is page N, and links the
    pages before and after it (a reader found two pages skipping the one between)."""
    order = re.findall(r"^(\d+)\. \[[^\]]*\]\(([\w-]+\.md)\)", (DOCS / "index.md").read_text(), re.M)
    pages = [name for _, name in order]
    assert [int(n) for n, _ in order] == list(range(1, len(pages) + 1))
    for number, name in enumerate(pages, 1):
        header = (DOCS / name).read_text().split("\n\n")[1]
        assert header.startswith(f"*Course page {number}."), (name, header[:60])
        links = set(re.findall(r"\]\(([\w-]+\.md)\)", header))
        if number > 1:
            assert pages[number - 2] in links, f"{name} should link back to {pages[number - 2]}"
        if number < len(pages):
            assert pages[number] in links, f"{name} should link on to {pages[number]}"


@pytest.mark.parametrize("page", WITH_README, ids=[p.name for p in WITH_README])
def test_code_blocks_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text())
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    namespace = {"__name__": f"docs.{page.stem}"}
    for number, source in enumerate(blocks, 1):
        filename = f"{page.relative_to(ROOT)} [python block {number}]"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
        code = compile(source, filename, "exec")
        exec(code, namespace)  # noqa: S102 -- running the docs is the point
    import matplotlib.pyplot as plt
    plt.close("all")


def _shape_commands():
    """Every ``minisegnet shapes ...`` / ``minisegnet summary ...`` line of a bash fence: (page, line)."""
    found = []
    for page in WITH_README:
        for lang, body in _FENCE.findall(page.read_text()):
            if lang in ("bash", "sh", ""):
                found += [(page.name, line.split("#")[0].strip()) for line in body.splitlines()
                          if line.startswith(("minisegnet shapes ", "minisegnet summary "))]
    return found


def test_shape_and_summary_commands_in_the_docs_run(capsys):
    """The README's summary example once failed (an input too small for DeepLab's rates): run them all."""
    import shlex

    from minisegnet.cli import main
    commands = _shape_commands()
    assert len(commands) >= 4, commands
    for page, line in commands:
        assert main(shlex.split(line)[1:]) == 0, f"{page}: {line!r} failed: {capsys.readouterr().err}"


@pytest.mark.parametrize("page", WITH_README, ids=[p.name for p in WITH_README])
def test_links_resolve(page):
    broken = []
    for path, anchor in relative_links(page):
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{path} (no such file)")
        elif anchor and target.suffix == ".md":
            # headings outside code blocks, their inline code kept (slug drops the backticks)
            anchors = {slug(h) for h in _HEADING.findall(_FENCE.sub("", target.read_text()))}
            if anchor not in anchors:
                broken.append(f"{path}#{anchor} (no such heading)")
    assert not broken, f"{page.name}: broken links: {broken}"


def test_figure_command_makes_every_referenced_figure(tmp_path):
    figures = referenced_figures()
    assert figures, "the docs show no figures"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "minisegnet.viz", str(tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    made = {p.name for p in tmp_path.iterdir()}
    missing = [name for name in figures if name not in made]
    assert not missing, f"referenced but not produced by python -m minisegnet.viz: {missing}"
    for name in figures:
        assert (tmp_path / name).stat().st_size > 1000, f"{name} looks empty"


def test_the_docs_stand_alone():
    """No page cites an issue number or links outside the repository: readers have neither."""
    texts = {p: p.read_text() for p in PAGES + [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]}
    texts.update({p: p.read_text() for folder in ("examples", "benchmarks") for p in (ROOT / folder).glob("*.py")})
    citing = sorted(str(p.relative_to(ROOT)) for p, text in texts.items()
                    if re.search(r"\bissues? #?\d+", text, re.I))
    assert not citing, f"these cite issue numbers: {citing}"
    outside = []
    for page in [p for p in texts if p.suffix == ".md"]:
        for path, _ in relative_links(page):
            if path and ROOT not in (page.parent / path).resolve().parents:
                outside.append(f"{page.name} -> {path}")
    assert not outside, f"links outside the repository: {outside}"


def test_the_readme_states_the_default_models_size():
    """README: "... (8 base channels, depth 3, 0.12 M parameters)": the default run's model."""
    from minisegnet import run_config
    from minisegnet.models import UNet
    from minisegnet.tasks import semantic
    stated = re.search(r"depth (\d+), ([\d.]+) M parameters", (ROOT / "README.md").read_text())
    settings = semantic.SemanticTask.models[run_config.DEFAULTS["model"] or semantic.SemanticTask.defaults["model"]]
    assert int(stated.group(1)) == settings["depth"]
    model = UNet(3, 4, **settings)
    assert round(sum(p.data.size for p in model.parameters()) / 1e6, 2) == float(stated.group(2))


def test_the_readme_names_every_task():
    """Each task ``minisegnet train --task NAME`` can train is introduced in the README."""
    from minisegnet.tasks import TASKS
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in TASKS if f"`--task {name}`" not in readme]
    assert not missing, f"README does not introduce --task {', --task '.join(missing)}"


def test_markdown_helpers_cannot_pass_vacuously():
    page = "text [a](b.md#c) ![f](figures/x.png) `[no](link.md)`\n```python\nassert 1\n```\n"
    assert python_blocks(page) == ["assert 1\n"]
    assert _LINK.findall(strip_code(page)) == ["b.md#c", "figures/x.png"]
    assert slug("Why does 572 become 388?") == "why-does-572-become-388"
    assert slug("`align_corners`: what it changes") == "align_corners-what-it-changes"
    assert msn.shapes.conv2d_output_size(5, 3) == 3
