"""Recipes published to a database and pulled by stations (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import select

from inspector.cli import main
from inspector.errors import InspectorError
from inspector.recipe.io import load_recipe, recipe_hash, save_recipe
from inspector.services.publishing import publish, published, pull
from inspector.store.database import open_store
from tests.helpers import fixtured, fixtured_recipe, rows


@pytest.fixture
def taught(tmp_path):
    """A recipe that names a reference image and a normal model file beside it."""
    recipe, _ = fixtured_recipe(tmp_path / "src")
    model = tmp_path / "src" / "label.normal-0123456789ab.npz"
    model.write_bytes(b"normal model bytes")
    recipe = dataclasses.replace(recipe, anomaly=dataclasses.replace(recipe.anomaly, model=model.name))
    return save_recipe(recipe, recipe.source)


def test_versions_are_numbered_and_the_same_recipe_is_not_published_twice(taught, db_url):
    store = open_store(db_url)
    assert publish(store, taught.source, by="ana", note="first") == (1, True)
    assert publish(store, taught.source) == (1, False)
    changed = dataclasses.replace(taught, defects=dataclasses.replace(taught.defects, min_area=55.0))
    save_recipe(changed, taught.source)
    assert publish(store, taught.source, note="bigger defects only") == (2, True)
    (taught.source.parent / "label.normal-0123456789ab.npz").write_bytes(b"taught again")
    assert publish(store, taught.source) == (3, True)  # same YAML, another model file: a new version
    listed = published(store)
    store.close()
    assert [(p.version, p.note) for p in listed] == [(3, ""), (2, "bigger defects only"), (1, "first")]
    assert listed[-1].published_by == "ana"
    assert sorted(listed[0].files) == ["label.normal-0123456789ab.npz", "reference.png"]


def test_a_pulled_version_is_the_published_one_and_results_point_to_it(taught, db_url, tmp_path):
    store = open_store(db_url)
    publish(store, taught.source)
    save_recipe(dataclasses.replace(taught, description="v2"), taught.source)
    publish(store, taught.source)
    first, version = pull(store, "Label", tmp_path / "station", version=1)
    newest, newest_version = pull(store, "Label", tmp_path / "station")
    store.close()
    assert (version, newest_version) == (1, 2)
    assert first.source.parent.parent == tmp_path / "station" and first.source.parent.name.endswith("-v1")
    assert (first.reference_path.read_bytes()) == taught.reference_path.read_bytes()
    assert first.resolve(first.anomaly.model).read_bytes() == b"normal model bytes"
    assert newest.description == "v2" and first.description == ""
    (sha,) = rows(db_url, "SELECT recipe_sha256 FROM published_recipes WHERE version = 1")[0]
    assert recipe_hash(load_recipe(first.source)) == sha  # what every result records


def test_a_station_runs_a_published_version_by_product_name(db_url, tmp_path, capsys):
    from inspector.engine.image import write_image

    recipe, _ = fixtured_recipe(tmp_path / "src")
    store = open_store(db_url)
    publish(store, recipe.source)
    store.close()
    write_image(tmp_path / "part.png", fixtured(12).image)
    # The embedded model segments it: a real run, through the published recipe.
    status = main(["run", "--product", "Label", str(tmp_path / "part.png"), "--db", db_url, "--station", "line 3"])
    assert status == 0, capsys.readouterr().err
    assert "published version 1" in capsys.readouterr().err
    assert rows(db_url, "SELECT recipe_version FROM runs") == [(1,)]
    (stored,) = rows(db_url, "SELECT recipe_sha256 FROM inspections")[0]
    assert rows(db_url, "SELECT version FROM published_recipes WHERE recipe_sha256 = '" + stored + "'") == [(1,)]
    assert main(["run", "--product", "Bracket", str(tmp_path / "part.png"), "--db", db_url]) == 2
    assert "no published recipe 'Bracket'; products published: Label" in capsys.readouterr().err


def test_weights_named_by_path_are_not_published(taught, db_url):
    recipe = dataclasses.replace(taught, model=dataclasses.replace(taught.model, weights="./my-weights.pt"))
    save_recipe(recipe, taught.source)
    store = open_store(db_url)
    with pytest.raises(InspectorError, match=r"model\.weights is a path"):
        publish(store, taught.source)
    store.close()


def test_a_published_file_that_is_a_path_or_does_not_match_its_hash_is_refused(taught, tmp_path):
    from sqlalchemy import update

    from inspector.store.models import PublishedFile

    store = open_store(str(tmp_path / "r.db"))
    publish(store, taught.source)
    with store.transaction("tampering") as session:
        session.execute(update(PublishedFile).where(PublishedFile.name == "reference.png").values(content=b"other"))
    with pytest.raises(InspectorError, match=r"reference\.png does not match its hash"):
        pull(store, "Label", tmp_path / "station")
    with store.transaction("tampering") as session:
        session.execute(update(PublishedFile).where(PublishedFile.name == "reference.png").values(name="../../x.png"))
    with pytest.raises(InspectorError, match=re.escape("names a file '../../x.png'; refused")):
        pull(store, "Label", tmp_path / "station")
    store.close()
    assert not (tmp_path / "x.png").exists()


def test_the_command_line_publishes_lists_and_pulls(taught, tmp_path, capsys):
    db = str(tmp_path / "central.db")
    assert main(["recipe", "publish", str(taught.source), "--db", db, "--by", "ana", "--note", "first"]) == 0
    assert "published as version 1" in capsys.readouterr().out
    assert main(["recipe", "publish", str(taught.source), "--db", db]) == 0
    assert "already published as version 1" in capsys.readouterr().out
    assert main(["recipe", "list", "--db", db]) == 0
    assert "Label  v1" in capsys.readouterr().out
    assert main(["recipe", "pull", "Label", "--db", db, "--to", str(tmp_path / "pulled")]) == 0
    assert len(list((tmp_path / "pulled").glob("label-*-v1/recipe.yaml"))) == 1


def test_a_published_recipe_naming_weights_or_files_it_was_not_published_with_is_refused(taught, tmp_path):
    from sqlalchemy import update

    from inspector.store.models import PublishedRecipe

    store = open_store(str(tmp_path / "r.db"))
    publish(store, taught.source)
    for planted, instead, says in (
        ("weights: inspector-seg-n", "weights: ./reference.png", "names weights by path"),
        ("reference_image: reference.png", "reference_image: /etc/passwd", "refers to '/etc/passwd'"),
    ):
        with store.transaction("tampering") as session:
            content = session.scalar(select(PublishedRecipe.content))
            assert planted in content
            session.execute(update(PublishedRecipe).values(content=content.replace(planted, instead)))
        with pytest.raises(InspectorError, match=re.escape(says)):
            pull(store, "Label", tmp_path / "station")
        with store.transaction("putting back") as session:
            session.execute(update(PublishedRecipe).values(content=content))
    store.close()


def test_publishing_pins_the_weights_it_was_made_with(taught, tmp_path):
    store = open_store(str(tmp_path / "r.db"))
    publish(store, taught.source)
    pulled, _ = pull(store, "Label", tmp_path / "station")
    store.close()
    assert taught.model.sha256 is None and pulled.model.sha256 and len(pulled.model.sha256) == 64
