"""Recipes published to a (central) database and pulled by stations.

Publishing stores a recipe as a numbered version of its product: its YAML with every file
it names renamed to a plain file name, and those files (the reference image, the taught
normal model, exemplar images) beside it in the database. Pulling writes them back into a
folder of their own and checks each against its hash. The pulled recipe has the same
content hash as the published one, which every result records: a result points to the
exact version it was inspected with (and its run says the version number).

Weights are not published: a station resolves ``model.weights`` by name (the embedded
model, or a file in its model folder) and the recipe's ``model.sha256`` pins which file.
A recipe naming weights or CLIP weights by path is refused for that reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from inspector.engine.image import read_bytes
from inspector.errors import InspectorError, StoreError
from inspector.recipe.io import dump_recipe, load_recipe, parse_recipe, recipe_hash, save_recipe
from inspector.recipe.model import Recipe
from inspector.store.database import Store
from inspector.store.models import PublishedFile, PublishedRecipe

MAX_FILE_BYTES = 512 << 20  # a reference image or normal model larger than any real one
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


@dataclass(frozen=True)
class Published:
    """One published version, as listed."""

    product: str
    version: int
    recipe_sha256: str
    published_at: object
    published_by: str
    note: str
    files: tuple[str, ...]


def _is_path(name: str | None) -> bool:
    return bool(name) and ("/" in name or "\\" in name)


def _names_files(recipe: Recipe) -> list[str]:
    """Every file name a recipe refers to."""
    names = [recipe.reference_image]
    if recipe.anomaly.model is not None:
        names.append(recipe.anomaly.model)
    names += [e.image for e in recipe.defects.exemplars if e.image]
    return names


def _packed(recipe: Recipe) -> tuple[Recipe, dict[str, Path]]:
    """The recipe with its files renamed to plain names, and where each name's file is."""
    if _is_path(recipe.model.weights):
        raise InspectorError(
            f"{recipe.source}: model.weights is a path ({recipe.model.weights}); a published recipe names its "
            "weights (the embedded model, or a file in each station's model folder) and pins model.sha256"
        )
    if _is_path(recipe.clip.weights):
        raise InspectorError(f"{recipe.source}: clip.weights is a path; name CLIP weights the stations have")
    files: dict[str, Path] = {}

    def take(reference: str, plain: str) -> str:
        path = recipe.resolve(reference)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", plain).lstrip("._-")[-120:].lstrip("._-") or "file"
        while name in files and files[name] != path:
            name = f"x{name}"
        files[name] = path
        return name

    reference = take(recipe.reference_image, "reference" + Path(recipe.reference_image).suffix.lower())
    anomaly = recipe.anomaly
    if anomaly.model is not None:
        anomaly = replace(anomaly, model=take(anomaly.model, Path(anomaly.model).name))
    exemplars = tuple(
        replace(e, image=take(e.image, "exemplar-" + Path(e.image).name)) if e.image else e
        for e in recipe.defects.exemplars
    )
    packed = replace(
        recipe, reference_image=reference, anomaly=anomaly, defects=replace(recipe.defects, exemplars=exemplars)
    )
    return packed, files


def publish(store: Store, recipe_path: str | Path, *, by: str = "", note: str = "") -> tuple[int, bool]:
    """Publish the recipe file as the next version of its product.

    Returns the version and whether it is new: the same recipe with the same files as the
    latest version is that version again, not a new one.

    Raises:
        RecipeError: the recipe does not load.
        InspectorError: a file it names cannot be read, or it names weights by path.
        StoreError: the database cannot take it.
    """
    recipe = load_recipe(recipe_path)
    _packed(recipe)  # refuses weights named by path before they are looked for
    if not recipe.model.sha256:  # stations must run the very weights it was made with
        from inspector.engine.weights import resolve_weights

        resolved = resolve_weights(recipe.weights_spec)
        recipe = replace(recipe, model=replace(recipe.model, sha256=resolved.identity.sha256))
    packed, paths = _packed(recipe)
    files = {}
    for name, path in paths.items():
        try:
            files[name] = read_bytes(path, limit=MAX_FILE_BYTES)
        except InspectorError as exc:
            raise InspectorError(f"cannot publish {recipe_path}: {exc}") from None
    content = dump_recipe(packed)
    digest = recipe_hash(packed)
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for _attempt in range(3):
        try:
            with store.transaction(f"publishing {recipe.name}") as session:
                latest = session.scalar(
                    select(PublishedRecipe)
                    .where(PublishedRecipe.product == recipe.name)
                    .order_by(PublishedRecipe.version.desc())
                    .limit(1)
                )
                same_files = latest is not None and {f.name: f.sha256 for f in latest.files} == sums
                if same_files and latest.recipe_sha256 == digest:
                    return latest.version, False
                version = (latest.version if latest else 0) + 1
                session.add(
                    PublishedRecipe(
                        product=recipe.name,
                        version=version,
                        recipe_sha256=digest,
                        content=content,
                        published_by=by,
                        note=note,
                        files=[PublishedFile(name=n, sha256=sums[n], content=files[n]) for n in sorted(files)],
                    )
                )
            return version, True
        except StoreError as exc:  # another publisher took this version number a moment before
            if not isinstance(exc.__cause__, IntegrityError):
                raise
    raise StoreError(f"{store.url}: could not publish {recipe.name}: the version numbers kept being taken")


def published(store: Store, product: str | None = None) -> list[Published]:
    """Published versions, newest first (of one product, or of all)."""
    with store.transaction("listing published recipes") as session:
        query = select(PublishedRecipe).order_by(PublishedRecipe.product, PublishedRecipe.version.desc())
        if product:
            query = query.where(PublishedRecipe.product == product)
        return [
            Published(
                p.product, p.version, p.recipe_sha256, p.published_at, p.published_by, p.note,
                tuple(f.name for f in p.files),
            )
            for p in session.scalars(query)
        ]  # fmt: skip


def _pulled_folder(folder: Path, product: str, version: int | str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", product.lower()).strip("-")[:60] or "recipe"
    # The product's own hash in the folder name: "Bracket A" and "bracket-a" never share one.
    return folder / f"{slug}-{hashlib.sha256(product.encode()).hexdigest()[:8]}-v{version}"


def pulled_before(folder: str | Path, product: str, version: int | None = None) -> tuple[Recipe, int] | None:
    """A version pulled earlier into ``folder`` (the newest, or ``version``), for a station
    that starts while the database it pulls from cannot be reached; None if there is none."""
    found = {}
    pattern = _pulled_folder(Path(folder), product, "*")
    for recipe_file in pattern.parent.glob(f"{pattern.name}/recipe.yaml"):
        number = recipe_file.parent.name.rpartition("-v")[2]
        if number.isdigit():
            found[int(number)] = recipe_file
    chosen = version if version is not None else max(found, default=None)
    if chosen not in found:
        return None
    return load_recipe(found[chosen]), chosen


def _check_pulled(recipe: Recipe, files: set[str], what: str) -> None:
    """A published recipe is untrusted: it may name only the files published with it, and
    weights only by name."""
    if _is_path(recipe.model.weights) or _is_path(recipe.clip.weights):
        raise InspectorError(f"published recipe {what} names weights by path; refused")
    for name in _names_files(recipe):
        if name not in files:
            raise InspectorError(f"published recipe {what} refers to {name!r}, which was not published with it")


def pull(store: Store, product: str, folder: str | Path, *, version: int | None = None) -> tuple[Recipe, int]:
    """Write a published version (the newest by default) into ``folder/<product>-v<N>/``;
    returns the recipe, loaded from there, and its version. A folder already holding
    that version is checked and used as it is.

    Raises:
        InspectorError: no such product or version, or a file that does not match its hash.
    """
    with store.transaction(f"pulling {product}") as session:
        query = select(PublishedRecipe).where(PublishedRecipe.product == product)
        query = query.where(PublishedRecipe.version == version) if version else query
        entry = session.scalar(query.order_by(PublishedRecipe.version.desc()).limit(1))
        if entry is None:
            known = session.scalars(select(PublishedRecipe.product).distinct().order_by(PublishedRecipe.product)).all()
            newest = session.scalar(select(func.max(PublishedRecipe.version)).where(PublishedRecipe.product == product))
            held = f"its newest is version {newest}" if newest else f"products published: {', '.join(known) or 'none'}"
            what = f"{product!r} version {version}" if version else repr(product)
            raise InspectorError(f"{store.url}: no published recipe {what}; {held}")
        size = session.scalar(
            select(func.sum(func.length(PublishedFile.content))).where(PublishedFile.published_id == entry.id)
        )
        if (size or 0) > 4 * MAX_FILE_BYTES:
            raise InspectorError(f"published recipe {product!r} v{entry.version} holds {size} bytes; refused")
        files = {f.name: (f.sha256, f.content) for f in entry.files}
        content, digest, number = entry.content, entry.recipe_sha256, entry.version
    target = _pulled_folder(Path(folder), product, number)
    for name, (sha, data) in files.items():
        if not _SAFE_NAME.match(name):  # names come from the database: never a path
            raise InspectorError(f"published recipe {product!r} v{number} names a file {name!r}; refused")
        if hashlib.sha256(data).hexdigest() != sha:
            raise InspectorError(f"published recipe {product!r} v{number}: {name} does not match its hash")
    _check_pulled(parse_recipe(content, source=target / "recipe.yaml"), set(files), f"{product!r} v{number}")
    target.mkdir(parents=True, exist_ok=True)
    for name, (sha, data) in files.items():
        path = target / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
            continue
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    recipe = save_recipe(parse_recipe(content, source=target / "recipe.yaml"), target / "recipe.yaml")
    if recipe_hash(recipe) != digest:
        raise InspectorError(f"published recipe {product!r} v{number} does not load back as it was published")
    return load_recipe(recipe.source), number
