"""The layout promises of the "one family, one home" architecture, checked on the tree.

A family is found by one name in every layer; the maths in ``inversion/`` never imports
Lightning or the wiring layers; the benchmark tables take no maths or defaults from the
LightningModules; enumerated options are ``Literal`` types the CLI checks at parse time.
"""

import ast
from pathlib import Path

import pytest

from model_inversion import train

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
FAMILIES = [
    "class_inversion",
    "robust_prior",
    "layerwise",
    "gan_inversion",
    "conditioned_generator",
    "dominant_patterns",
]
WIRING = ("lightning", "pytorch_lightning", "model_inversion")
LIGHTNING_MODULES = REPO / "model_inversion" / "lightning_modules"


def imported_modules(path: Path) -> set[str]:
    """Top-level and function-level imports of a Python file, as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_is_found_by_its_name_in_every_layer(family):
    package = REPO / "inversion" / family
    assert (package / "__init__.py").is_file()
    assert "__all__" in (package / "__init__.py").read_text()
    assert list(LIGHTNING_MODULES.glob(f"{family}*.py"))
    assert list((REPO / "configs" / "digits").glob(f"{family}*.yaml"))
    assert (REPO / "benchmarks" / f"{family}_table.py").is_file()
    assert list((REPO / "tests").glob(f"test_{family}*.py"))


def test_every_module_and_config_belongs_to_a_family_or_is_shared():
    shared_modules = {
        "__init__",
        "base",
        "classifier",
        "real_images",
        "strategies",
        "lightning_internals",
    }
    shared_configs = {"classifier", "real_images"}
    for path in LIGHTNING_MODULES.glob("*.py"):
        assert path.stem in shared_modules or path.stem.startswith(tuple(FAMILIES)), path
    for path in (REPO / "configs").rglob("*.yaml"):
        if path.parent.name in ("trainer", "logging"):  # fragments: hardware, loggers
            continue
        assert path.stem in shared_configs or path.stem.startswith(tuple(FAMILIES)), path


def test_the_maths_never_imports_the_wiring():
    for path in (REPO / "inversion").rglob("*.py"):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in WIRING}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_tables_take_nothing_from_the_lightning_modules():
    for path in (REPO / "benchmarks").glob("*_table.py"):
        bad = {
            m for m in imported_modules(path) if m.startswith("model_inversion.lightning_modules")
        }
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    ("config", "option", "choices"),
    [
        ("class_inversion_pii", "recipe", "'pii', 'deepinversion', 'deepdream', 'custom'"),
        ("dominant_patterns", "objective", "'dominant', 'sgd_uap', 'cosine_uap', 'gd_uap'"),
        ("layerwise", "method", "'layerwise', 'naive'"),
        ("robust_prior_inversion", "tool", "'invert', 'visualize', 'manipulate'"),
        ("robust_prior_training", "norm", "'linf', 'l2'"),
        ("conditioned_generator", "conditioning", "'onehot', 'vector', 'matrix'"),
    ],
)
def test_a_typo_in_a_choice_is_refused_at_parse_time(config, option, choices, capsys):
    path = REPO / "configs" / "digits" / f"{config}.yaml"
    args = ["fit", "--config", str(path), f"--model.init_args.{option}=typo", "--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        train.main(args)
    assert exit_info.value.code == 2
    assert choices in capsys.readouterr().err


SCRIPTS = ("train", "evaluate", "generate")


def test_the_distribution_installs_no_generic_top_level_module():
    """The command lines live in model_inversion; the root scripts only call them."""
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py-modules" not in setup["tool"]["setuptools"]
    packages = setup["tool"]["setuptools"]["packages"]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for root in ("inversion", "model_inversion")
        for init in (REPO / root).rglob("__init__.py")
    }
    assert set(packages) == on_disk | {"model_inversion.configs"}, "update pyproject packages"
    assert setup["tool"]["setuptools"]["package-dir"] == {"model_inversion.configs": "configs"}
    assert setup["project"]["scripts"] == {
        f"inversion-{name}": f"model_inversion.{name}:run_from_command_line" for name in SCRIPTS
    }
    for name in SCRIPTS:
        assert (REPO / "model_inversion" / f"{name}.py").is_file()
        script = REPO / f"{name}.py"
        assert imported_modules(script) == {f"model_inversion.{name}"}, script
        assert len(script.read_text().splitlines()) < 15, f"{script} is more than a thin script"
