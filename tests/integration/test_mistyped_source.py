"""A source that does not exist stops `inspector run` before anything is stored."""

from __future__ import annotations

from inspector.cli import main
from tests.helpers import fixtured_recipe


def test_run_refuses_a_mistyped_source_with_status_2_and_names_it(tmp_path, capsys):
    recipe, _ = fixtured_recipe(tmp_path)
    (tmp_path / "parts").mkdir()
    typo = tmp_path / "prats"
    db = tmp_path / "results.db"
    assert main(["run", "--recipe", str(recipe.source), str(typo), "--db", str(db)]) == 2
    assert capsys.readouterr().err == f"inspector run: error: {typo}: no such file or folder\n"
    assert not db.exists()
    assert main(["run", "--recipe", str(recipe.source), str(tmp_path / "parts"), str(typo), "--db", str(db)]) == 2
    assert f"{typo}: no such file or folder" in capsys.readouterr().err and not db.exists()
