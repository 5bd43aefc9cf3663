"""The labelled-figure helpers (benchmarks/figures.py) and the class-inversion figures."""

import pytest
import torch
from PIL import Image

pytest.importorskip("matplotlib")

from benchmarks import class_inversion_table as table  # noqa: E402
from benchmarks.figures import DPI, curves, heatmap, labelled_grid  # noqa: E402
from benchmarks.table_cli import run_table_command  # noqa: E402


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def figure_size(figure) -> tuple[int, int]:
    width, height = figure.get_size_inches() * DPI
    return round(width), round(height)


def texts(labels) -> list[str]:
    return [label.get_text() for label in labels]


def test_a_grid_has_one_title_per_row_and_column(tmp_path):
    images = torch.rand(3, 4, 1, 8, 8)
    rows, cols = ["a", "b", "c"], ["w", "x", "y\nz", "long column title"]
    figure = labelled_grid(images, rows, cols, tmp_path / "grid.png", title="the grid")
    (axes,) = figure.axes
    assert texts(axes.get_yticklabels()) == rows
    assert texts(axes.get_xticklabels()) == cols
    assert figure.get_suptitle() == "the grid"
    assert png_size(tmp_path / "grid.png") == figure_size(figure)
    # the cells are upscaled: the drawn canvas is wider than 4 images of 8 pixels
    canvas = axes.get_images()[0].get_array()
    assert canvas.shape[0] > 3 * 8 * 4 and canvas.shape[1] > 4 * 8 * 4


def test_a_grid_takes_rows_of_colour_images(tmp_path):
    rows = [[torch.rand(3, 16, 16) for _ in range(2)] for _ in range(2)]
    figure = labelled_grid(rows, ["r0", "r1"], ["c0", "c1"], tmp_path / "rgb.png")
    assert png_size(tmp_path / "rgb.png") == figure_size(figure)
    canvas = figure.axes[0].get_images()[0].get_array()
    assert canvas.shape[2] == 3


def test_a_grid_with_titles_that_do_not_fit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="titles"):
        labelled_grid(torch.rand(2, 3, 1, 8, 8), ["a"], ["x", "y", "z"], tmp_path / "g.png")
    with pytest.raises(ValueError, match="length"):
        labelled_grid([[torch.rand(1, 8, 8)], []], ["a", "b"], ["x"], tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_the_same_figure_gives_the_same_file(tmp_path):
    images = torch.rand(2, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for name in ("one.png", "two.png"):
        labelled_grid(images, ["a", "b"], ["x", "y"], tmp_path / name)
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()
    with Image.open(tmp_path / "one.png") as image:  # no software name or date
        assert not {"Software", "Creation Time", "date"} & set(image.info)


def test_curves_name_every_series_and_draw_the_intervals(tmp_path):
    series = {"standard": [0.99, 0.5, 0.1], "robust": [0.97, 0.9, 0.7]}
    errors = {"robust": [(0.95, 0.99), (0.85, 0.95), (0.6, 0.8)]}
    figure = curves([0, 0.5, 1], series, "eps", "accuracy", tmp_path / "c.png", errors)
    (axes,) = figure.axes
    assert texts(axes.get_legend().get_texts()) == list(series)
    assert axes.get_xlabel() == "eps" and axes.get_ylabel() == "accuracy"
    assert len(axes.containers) == 1  # one error-bar container: the series with intervals
    low, high = axes.get_ylim()
    assert low <= 0.1 and high >= 0.99
    assert png_size(tmp_path / "c.png") == figure_size(figure)


def test_many_curves_put_their_legend_beside_the_axes(tmp_path):
    series = {f"method {i}": [0.1 * i, 0.1 * i + 0.05] for i in range(8)}
    figure = curves([10, 16], series, "eps", "fooling rate", tmp_path / "many.png")
    (legend,) = figure.legends
    assert texts(legend.get_texts()) == list(series)
    assert png_size(tmp_path / "many.png") == figure_size(figure)
    assert figure_size(figure)[0] > 640


def test_curves_refuse_a_series_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="'a' has 2 values for 3"):
        curves([0, 1, 2], {"a": [0.1, 0.2]}, "x", "y", tmp_path / "c.png")


def test_a_heatmap_writes_every_value_and_has_a_colour_bar(tmp_path):
    matrix = [[0.91, 0.2, 0.3], [0.4, 0.85, 0.05]]
    figure = heatmap(matrix, ["cnn", "vit"], ["a", "b", "c"], tmp_path / "h.png", "fooling rate")
    cells, bar = figure.axes
    written = sorted(text.get_text() for text in cells.texts)
    assert written == sorted(f"{v:.2f}" for row in matrix for v in row)
    assert texts(cells.get_yticklabels()) == ["cnn", "vit"]
    assert texts(cells.get_xticklabels()) == ["a", "b", "c"]
    assert bar.get_ylabel() == "fooling rate"
    assert png_size(tmp_path / "h.png") == figure_size(figure)
    with pytest.raises(ValueError, match="matrix"):
        heatmap(matrix, ["cnn"], ["a", "b", "c"], tmp_path / "bad.png", "x")


def test_the_table_command_refuses_an_unknown_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_table_command("x_table", lambda: "table", lambda: [], ["--figure"])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
    run_table_command("x_table", lambda: "the table", lambda: [], [])
    assert "the table" in capsys.readouterr().out


def test_class_inversion_figures_read_the_tables_cached_cells(monkeypatch, tmp_path):
    """The figures ask for the cells :func:`run` caches (same fields) and draw one per class."""
    asked: list[dict] = []

    def fake_cache(name, fields, compute, sources):
        assert name == "class_inversion" and sources == table.SOURCES
        asked.append(fields)
        shade = len(asked) / 20  # one shade per cell: tells the columns apart
        labels = torch.arange(10).repeat_interleave(fields["per_class"])
        return {"images": torch.full((len(labels), 1, 32, 32), shade), "labels": labels}

    monkeypatch.setattr(table, "cached_tensors", fake_cache)
    monkeypatch.setattr(table, "tuned_lr", lambda target, recipe, options: 0.25)
    paths = table.write_figures(tmp_path)
    assert [p.name for p in paths] == [
        "class_inversion_digits.png",
        "class_inversion_ensemble.png",
    ]
    main = len(table.main_recipes())
    assert main == 7  # DeepInversion on digits:cnn only
    assert len(asked) == main + 4  # and the four ensemble sizes
    assert all(f["seed"] == table.SEEDS[0] and f["lr"] == 0.25 for f in
               ({**f, **f["options"]} for f in asked))  # fmt: skip
    assert [f["options"]["ensemble"] for f in asked[main:]] == [1, 2, 4, 8]
    assert all(f["target"] == "digits:vit" and f["recipe"] == "pii" for f in asked[main:])
    for path in paths:
        width, height = png_size(path)
        assert height > 10 * 64  # ten upscaled rows


def test_class_inversion_figures_use_the_key_of_run(monkeypatch):
    """:func:`cell_fields` stays the dict :func:`run` keys its inversion by."""
    seen = {}

    def fake_cache(name, fields, compute, sources):
        seen["fields"] = fields
        raise RuntimeError("stop before scoring")

    monkeypatch.setattr(table, "cached_tensors", fake_cache)
    options = {**table.OPTIONS["pii"], "lr": 0.1}
    with pytest.raises(RuntimeError, match="stop"):
        table.run("digits:cnn", "pii", options, 0)
    assert seen["fields"] == table.cell_fields(
        "digits:cnn", "pii", options, 0, table.IMAGES_PER_CLASS
    )
