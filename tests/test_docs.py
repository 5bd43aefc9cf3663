"""The docs cover the public API, the README's links resolve, and every table has one home.

MkDocs in strict mode (``.ci/run``) fails on a broken link or anchor inside ``docs/``; what it
cannot see is checked here: every public name is rendered by a ``:::`` directive of a
``docs/api/`` page and documented, the README (which GitHub renders from the repository
root) links only to files that exist, and each table's markers sit in exactly one page.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import update_readme

REPO = Path(__file__).resolve().parents[1]
API_PAGES = sorted((REPO / "docs" / "api").glob("*.md"))

# Packages whose whole __all__ must be rendered and documented ...
PACKAGES = [
    "inversion",
    "inversion.class_inversion",
    "inversion.robust_prior",
    "inversion.layerwise",
    "inversion.gan_inversion",
    "inversion.conditioned_generator",
    "inversion.dominant_patterns",
    "inversion.models",
    "inversion.metrics",
]
# ... and packages of the Lightning layer whose public classes must be.
CLASS_PACKAGES = [
    "model_inversion.lightning_modules",
    "model_inversion.datamodules",
    "model_inversion.callbacks",
]
# Constants and Literal choices exported without an attribute docstring (a string literal
# right after the assignment, which griffe and mkdocstrings read). They are rendered with
# their values; give each a docstring and remove it here. A new undocumented name fails.
UNDOCUMENTED = {
    "inversion.class_inversion.INITS",
    "inversion.class_inversion.RECIPES",
    "inversion.class_inversion.RecipeName",
    "inversion.conditioned_generator.ADVERSARIAL_RULES",
    "inversion.conditioned_generator.CONDITIONINGS",
    "inversion.conditioned_generator.COSINE_PAIRS",
    "inversion.conditioned_generator.Conditioning",
    "inversion.conditioned_generator.CosinePairs",
    "inversion.conditioned_generator.GENERATOR_KEY",
    "inversion.conditioned_generator.SPLIT_SEEDS",
    "inversion.dominant_patterns.DEFAULT_EPS",
    "inversion.dominant_patterns.LOGITS",
    "inversion.dominant_patterns.OBJECTIVES",
    "inversion.dominant_patterns.Objective",
    "inversion.gan_inversion.DIGITS_GAN",
    "inversion.layerwise.METHODS",
    "inversion.layerwise.Method",
    "inversion.models.PENULTIMATE",
    "inversion.robust_prior.DEFAULT_ALPHAS",
    "inversion.robust_prior.HUGE_EPS",
    "inversion.robust_prior.SEED_IMAGES",
    "inversion.robust_prior.STEP_FACTOR",
    "inversion.robust_prior.SeedImage",
    "inversion.robust_prior.TOOLS",
    "inversion.robust_prior.TOOL_DEFAULTS",
    "inversion.robust_prior.Tool",
}


def directives() -> list[tuple[str, dict[str, Any]]]:
    """``(identifier, options)`` of every ``::: identifier`` block of the API pages."""
    found = []
    for page in API_PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"^::: (\S+)\s*$", line)
            if not match:
                continue
            block = []
            for following in lines[i + 1 :]:
                if following.strip() and not following.startswith(" "):
                    break
                block.append(following)
            config = yaml.safe_load(textwrap.dedent("\n".join(block))) or {}
            found.append((match.group(1), config.get("options", {})))
    return found


@pytest.fixture(scope="module")
def griffe_modules():
    """The packages as mkdocstrings sees them: loaded by griffe, aliases resolved."""
    griffe = pytest.importorskip("griffe", reason="the docs toolchain (the dev extra)")
    loader = griffe.GriffeLoader(search_paths=[str(REPO)])
    for package in ("inversion", "model_inversion"):
        loader.load(package)
    loader.resolve_aliases(implicit=False, external=False)
    return loader.modules_collection


def lookup(modules, path: str):
    """The object at a dotted ``path``, followed to its definition if it is an alias."""
    obj = modules[path]
    return obj.final_target if obj.is_alias else obj


def rendered(modules) -> set[str]:
    """Paths (of definitions) of every object a ``:::`` directive renders at its top level."""
    paths = set()
    for identifier, options in directives():
        obj = lookup(modules, identifier)
        paths.add(obj.path)
        members = options.get("members")
        if not obj.is_module or members is False:
            continue
        if isinstance(members, list):
            names = members
        elif obj.exports is not None:
            names = [str(name) for name in obj.exports]
        else:
            names = [name for name, member in obj.members.items() if member.is_public]
        paths |= {lookup(modules, f"{identifier}.{name}").path for name in names}
    return paths


def public_names() -> list[tuple[str, str]]:
    """``(package, name)`` of every name the docs must render and document."""
    names = [(p, n) for p in PACKAGES for n in importlib.import_module(p).__all__]
    for package in CLASS_PACKAGES:
        module = importlib.import_module(package)
        names += [(package, n) for n in module.__all__ if isinstance(getattr(module, n), type)]
    return names


@pytest.mark.parametrize("family", [p.split(".")[1] for p in PACKAGES[1:7]])
def test_every_family_has_its_page_and_its_api_page(family):
    page = REPO / "docs" / f"{'layerwise' if family == 'gan_inversion' else family}.md"
    assert page.is_file(), f"no page for {family}"
    assert f"api/{family}.md" in page.read_text(), f"{page.name} does not link its API page"
    api = (REPO / "docs" / "api" / f"{family}.md").read_text()
    assert f"::: inversion.{family}\n" in api


def test_every_api_directive_names_an_object(griffe_modules):
    assert directives(), "docs/api/*.md renders nothing"
    for identifier, _ in directives():
        assert lookup(griffe_modules, identifier) is not None, identifier


def test_every_public_name_is_rendered_by_an_api_page(griffe_modules):
    shown = rendered(griffe_modules)
    missing = [
        f"{package}.{name}"
        for package, name in public_names()
        if lookup(griffe_modules, f"{package}.{name}").path not in shown
    ]
    assert not missing, f"no docs/api/*.md directive renders {missing}"


def test_every_public_name_has_a_docstring(griffe_modules):
    undocumented = {
        f"{package}.{name}"
        for package, name in public_names()
        if not lookup(griffe_modules, f"{package}.{name}").docstring
    }
    assert not undocumented - UNDOCUMENTED, "public names without a docstring"
    assert not UNDOCUMENTED - undocumented, "documented now: remove them from UNDOCUMENTED"


def test_the_inversion_page_lists_every_curated_name():
    import inversion

    page = (REPO / "docs" / "api" / "inversion.md").read_text()
    missing = [name for name in inversion.__all__ if f"[`{name}`]" not in page]
    assert not missing, f"docs/api/inversion.md does not list {missing}"


def github_slug(heading: str) -> str:
    """The anchor GitHub (and MkDocs' toc) gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks)."""
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.add(github_slug(line.lstrip("#")))
    return found


def relative_links(text: str) -> list[str]:
    """Link and image targets of Markdown text that are not web addresses."""
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [t for t in targets if "://" not in t and not t.startswith("mailto:")]


def test_readme_links_point_to_files_and_headings_that_exist():
    readme = REPO / "README.md"
    links = relative_links(readme.read_text())
    assert any(link.startswith("docs/") for link in links), "the README links no docs page"
    for link in links:
        file, _, anchor = link.partition("#")
        target = REPO / file if file else readme
        assert target.is_file(), f"README.md links {link}: no such file"
        if anchor:
            assert anchor in anchors(target), f"README.md links {link}: no such heading"


def test_readme_names_the_two_setup_commands():
    readme = (REPO / "README.md").read_text()
    fit = "python train.py fit --config configs/digits/classifier.yaml"
    assert f'pip install -e ".[dev]" && {fit}' in readme
    assert "python -m pytest\n" in readme


@pytest.mark.parametrize("name", list(update_readme.TABLES))
def test_every_table_has_its_markers_in_exactly_one_page(name):
    page = update_readme.page_with_marker(name)
    text = page.read_text()
    assert text.count(f"<!-- table:{name} -->") == 1
    assert text.count(f"<!-- /table:{name} -->") == 1
    assert text.index(f"<!-- table:{name} -->") < text.index(f"<!-- /table:{name} -->")


def test_no_page_holds_a_marker_of_an_unknown_table():
    for page in update_readme.pages():
        for name in re.findall(r"<!-- /?table:([a-z_0-9]+) -->", page.read_text()):
            assert name in update_readme.TABLES, f"{page}: unknown table {name}"


def test_a_table_is_written_into_its_page_with_links_relative_to_it(tmp_path):
    (tmp_path / "docs" / "images").mkdir(parents=True)
    (tmp_path / "README.md").write_text("# title\n")
    page = tmp_path / "docs" / "family.md"
    page.write_text("before\n<!-- table:zoo -->\nold\n<!-- /table:zoo -->\nafter\n")
    table = "| a |\n|---|\n| 1 |\n\n![fig](docs/images/fig.png) [web](https://example.org)"
    assert update_readme.write_table("zoo", table, root=tmp_path) == page
    assert page.read_text() == (
        "before\n<!-- table:zoo -->\n| a |\n|---|\n| 1 |\n\n"
        "![fig](images/fig.png) [web](https://example.org)\n<!-- /table:zoo -->\nafter\n"
    )
    # the README sits at the root: its links stay as the table names them
    assert update_readme.relative_links(table, tmp_path / "README.md", tmp_path) == table


def test_a_marker_in_no_page_or_in_two_is_an_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("<!-- table:zoo -->\n<!-- /table:zoo -->\n")
    (tmp_path / "docs" / "a.md").write_text("<!-- table:zoo -->\n<!-- /table:zoo -->\n")
    with pytest.raises(SystemExit, match="found in README.md, docs/a.md"):
        update_readme.page_with_marker("zoo", root=tmp_path)
    with pytest.raises(SystemExit, match="found in no file"):
        update_readme.page_with_marker("peers", root=tmp_path)
