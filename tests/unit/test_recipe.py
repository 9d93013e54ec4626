"""Recipe files: round trip, hashing, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main
from inspector.engine.image import write_image
from inspector.engine.preflight import validate_recipe
from inspector.errors import RecipeError
from inspector.recipe import SCHEMA_VERSION, Recipe, dump_recipe, load_recipe, recipe_hash, save_recipe
from inspector.recipe.model import DefectRules, PartPrompts

GOOD = """\
schema_version: 1
product:
  name: Washer
  reference_image: ref.png
part:
  boxes:
  - [10, 10, 90, 70]
  points:
  - [50, 40]
  - [5, 5, 0]
defects:
  min_area: 20
  allowed: 1
"""


@pytest.fixture
def recipe_dir(tmp_path) -> Path:
    write_image(tmp_path / "ref.png", np.full((80, 100, 3), 128, np.uint8))
    return tmp_path


def write(folder: Path, text: str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_round_trip_keeps_every_field_and_the_hash(recipe_dir):
    recipe = load_recipe(write(recipe_dir, GOOD))
    assert recipe.part.points == ((50.0, 40.0, 1), (5.0, 5.0, 0))
    assert recipe.defects.allowed == 1 and recipe.defects.min_area == 20
    assert recipe.reference_path == recipe_dir / "ref.png"
    again = save_recipe(recipe, recipe_dir / "copy.yaml")
    reloaded = load_recipe(again.source)
    assert reloaded == recipe
    assert recipe_hash(reloaded) == recipe_hash(recipe)
    assert dump_recipe(reloaded) == dump_recipe(recipe)


def test_comparison_with_the_reference_is_kept_and_written_only_when_used(recipe_dir):
    recipe = load_recipe(write(recipe_dir, GOOD))
    assert recipe.defects.changed_fraction == 0.0 and not recipe.defects.differences
    text = dump_recipe(recipe)
    assert "changed_fraction" not in text and "differences" not in text  # older recipes keep their hash
    checked = load_recipe(
        write(recipe_dir, GOOD.replace("  allowed: 1", "  allowed: 1\n  changed_fraction: 0.1\n  differences: true"))
    )
    assert checked.defects.changed_fraction == 0.1 and checked.defects.differences
    assert load_recipe(save_recipe(checked, recipe_dir / "copy.yaml").source) == checked
    assert recipe_hash(checked) != recipe_hash(recipe)


def test_a_taught_recipe_round_trips_and_an_untaught_one_keeps_its_hash(recipe_dir):
    recipe = load_recipe(write(recipe_dir, GOOD))
    assert not recipe.taught and recipe.detect == "segments" and "anomaly" not in dump_recipe(recipe)
    taught = load_recipe(
        write(recipe_dir, GOOD + "anomaly:\n  model: washer.normal-0123456789ab.npz\n  threshold: 12.5\n  border: 6\n")
    )
    assert taught.anomaly.border == 6.0
    assert taught.taught and taught.detect == "anomaly" and taught.uses_anomaly and not taught.uses_segments
    assert taught.anomaly.threshold == 12.5 and taught.anomaly.resolution == 192
    assert load_recipe(save_recipe(taught, recipe_dir / "copy.yaml").source) == taught
    both = load_recipe(
        write(recipe_dir, GOOD.replace("  allowed: 1", "  allowed: 1\n  detect: both") + "anomaly:\n  model: m.npz\n")
    )
    assert both.uses_anomaly and both.uses_segments
    assert recipe_hash(taught) != recipe_hash(recipe)


def test_hash_changes_with_content(recipe_dir):
    recipe = load_recipe(write(recipe_dir, GOOD))
    other = Recipe(**{**recipe.__dict__, "defects": DefectRules(allowed=2)})
    assert recipe_hash(other) != recipe_hash(recipe)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (GOOD.replace("  name: Washer\n", ""), ["product.name", "missing"]),
        (GOOD + "colour: red\n", ["colour", "unknown key"]),
        (GOOD.replace("  allowed: 1", "  allowed: 1\n  severity: 3"), ["defects.severity", "unknown key"]),
        (GOOD.replace("min_area: 20", "min_area: -5"), ["defects.min_area", "must be >= 0", "-5"]),
        (GOOD.replace("  allowed: 1", "  allowed: 1\n  changed_fraction: 1.5"), ["defects.changed_fraction", "1.5"]),
        (GOOD.replace("schema_version: 1", f"schema_version: {SCHEMA_VERSION + 1}"), ["newer", "upgrade"]),
        (GOOD.replace("schema_version: 1\n", ""), ["schema_version", "missing"]),
        ("product: [unclosed\n", ["not valid YAML", "line"]),
        ("- just\n- a list\n", ["must be a YAML mapping"]),
        (
            GOOD.replace("min_area: 20", "min_area: 2e1"),
            ["defects.min_area", "YAML reads it as text; write 2.0e+1"],
        ),
        (GOOD + "defects:\n  allowed: 5\n", ["not valid YAML", "'defects' is given twice", "line"]),
        (GOOD.replace("  allowed: 1", "  allowed: 1\n  allowed: 5"), ["'allowed' is given twice", "line"]),
        (GOOD + "alignment:\n  method: orb\n  max_features: 1000000000000\n", ["alignment.max_features", "<="]),
        (GOOD + "alignment:\n  method: orb\n  max_features: 100\n  min_inliers: 200\n", ["alignment.min_inliers"]),
        (GOOD.replace("[10, 10, 90, 70]", "[90, 10, 10, 70]"), ["part.boxes[0]", "empty"]),
        (GOOD.replace("[5, 5, 0]", "[5, 5, 3]"), ["part.points[1]", "label"]),
        (GOOD.replace("min_area: 20", "min_area: .nan"), ["defects.min_area", "must be a finite number", "nan"]),
        (GOOD.replace("[10, 10, 90, 70]", "[10, 10, .inf, 70]"), ["part.boxes[0]", "finite numbers", "inf"]),
        (GOOD.replace("min_area: 20", "min_area: 1" + "0" * 400), ["defects.min_area", "must be a finite number"]),
        (GOOD.replace("[10, 10, 90, 70]", "[10, 10, 9" + "0" * 400 + ", 70]"), ["part.boxes[0]", "finite numbers"]),
        (GOOD.replace("  allowed: 1", "  allowed: 1\n  detect: anomaly"), ["defects.detect", "inspector teach"]),
        (
            "lol: &a [x, x, x, x, x, x, x, x]\nlol2: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n" + GOOD,
            ["aliases (*name) are not allowed", "line 2"],
        ),
        (GOOD.replace("allowed: 1", "allowed: 1" + "0" * 5000), ["not a usable recipe", "digits"]),
        (GOOD.replace("  allowed: 1", "  allowed: 1\n  detect: magic"), ["defects.detect", "must be one of"]),
        (GOOD + "anomaly:\n  model: m.npz\n  resolution: 10\n", ["anomaly.resolution", ">= 64"]),
        (GOOD + "anomaly:\n  model: m.npz\n  false_rejects: 0.9\n", ["anomaly.false_rejects", "<= 0.5"]),
        (GOOD + "anomaly:\n  model: m.npz\n  colour: red\n", ["anomaly.colour", "unknown key"]),
    ],
)
def test_invalid_recipes_name_file_and_field(recipe_dir, text, fragments):
    path = write(recipe_dir, text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_validation_checks_the_reference_image_and_prompts(recipe_dir):
    outside = load_recipe(write(recipe_dir, GOOD.replace("[10, 10, 90, 70]", "[10, 10, 190, 70]")))
    with pytest.raises(RecipeError, match=r"part.boxes\[0\].*outside the 100x80 reference image"):
        validate_recipe(outside)
    missing = load_recipe(write(recipe_dir, GOOD.replace("ref.png", "gone.png")))
    with pytest.raises(RecipeError, match=r"gone\.png"):
        validate_recipe(missing)
    validate_recipe(load_recipe(write(recipe_dir, GOOD)))


def test_text_classes_without_clip_fail_validation_with_a_reason(recipe_dir):
    recipe = load_recipe(write(recipe_dir, GOOD.replace("  allowed: 1", "  allowed: 1\n  classes: [scratch]")))
    with pytest.raises(RecipeError, match=r"defects\.classes.*CLIP"):
        validate_recipe(recipe)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"nothing\.yaml"):
        load_recipe(tmp_path / "nothing.yaml")


def test_recipe_new_and_validate_commands(recipe_dir, capsys):
    out = recipe_dir / "recipes" / "washer.yaml"
    assert (
        main(["recipe", "new", "--reference", str(recipe_dir / "ref.png"), "--name", "Washer", "--out", str(out)]) == 0
    )
    recipe = load_recipe(out)
    assert recipe.name == "Washer" and recipe.reference_path.resolve() == (recipe_dir / "ref.png").resolve()
    assert recipe.part == PartPrompts()
    assert main(["recipe", "validate", str(out)]) == 0
    assert "ok" in capsys.readouterr().out
    broken = write(recipe_dir, GOOD.replace("min_area: 20", "min_area: -1"), "broken.yaml")
    assert main(["recipe", "validate", str(out), str(broken)]) == 2
    captured = capsys.readouterr()
    assert "broken.yaml" in captured.out and "defects.min_area" in captured.out
    assert (
        main(["recipe", "new", "--reference", str(recipe_dir / "ref.png"), "--name", "Washer", "--out", str(out)]) == 2
    )
    assert "already exists" in capsys.readouterr().err


def test_a_recipe_is_not_saved_over_a_folder_and_leaves_nothing_behind(recipe_dir):
    recipe = load_recipe(write(recipe_dir, GOOD))
    (recipe_dir / "lines").mkdir()
    with pytest.raises(RecipeError, match=r"lines: is a folder; give the recipe file's name"):
        save_recipe(recipe, recipe_dir / "lines")
    assert not list(recipe_dir.glob(".*.tmp"))


def test_a_recipe_that_is_a_pipe_or_too_large_is_refused_unread(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.yaml")
    with pytest.raises(RecipeError, match=r"pipe\.yaml: not a regular file"):
        load_recipe(tmp_path / "pipe.yaml")
    (tmp_path / "huge.yaml").write_text("# padding\n" * 200_000)
    with pytest.raises(RecipeError, match=r"huge\.yaml: \d+ bytes is too large for a recipe"):
        load_recipe(tmp_path / "huge.yaml")
