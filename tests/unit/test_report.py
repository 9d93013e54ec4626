"""Reports from a database filled by a real run of the inspection loop."""

from __future__ import annotations

import csv
import os
import sqlite3
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pymupdf
import pytest
from sqlalchemy import select, text

from inspector.cli import main
from inspector.gui.pdf import write_pdf
from inspector.report import ReportFilter, export_report
from inspector.services.inspection_loop import run_inspection
from inspector.sources.files import FileSource
from inspector.store.database import open_store
from inspector.store.models import Run
from inspector.store.repository import add_review
from tests.helpers import rows
from tests.unit.test_store_and_loop import line  # noqa: F401  (fixture)


def _fill(line, url):  # noqa: F811
    pipeline, folder, tmp = line
    (folder / "broken.png").write_text("not an image")
    store = open_store(url, images_dir=tmp / "images")
    run_inspection(pipeline, store, FileSource([folder]))
    with store.session() as session, session.begin():
        add_review(session, inspection_id=2, decision="confirmed")
        add_review(session, inspection_id=4, decision="false_alarm")
    return store


@pytest.fixture
def filled(line, db_url):  # noqa: F811
    """A database (SQLite, or PostgreSQL) filled by a real run, with two reviews."""
    store = _fill(line, db_url)
    yield store, line[2], db_url
    store.close()


@pytest.fixture
def filled_file(line):  # noqa: F811
    """The same in a SQLite file, for what only a file has (permissions, its -wal)."""
    store = _fill(line, f"sqlite:///{line[2] / 'r.db'}")
    yield store, line[2]
    store.close()


sql = rows


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.images = [], []

    def handle_data(self, data):
        self.text.append(data.strip())

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def test_csv_rows_match_the_database(filled):
    store, tmp, db = filled
    written = export_report(store, ReportFilter(), "csv", tmp / "out" / "report.csv")
    with written[0].open() as f:
        rows = list(csv.DictReader(f))
    with written[1].open() as f:
        defects = list(csv.DictReader(f))
    assert [int(r["inspection_id"]) for r in rows] == [i for (i,) in sql(db, "SELECT id FROM inspections")]
    db_verdicts = dict(sql(db, "SELECT id, verdict FROM inspections"))
    assert {int(r["inspection_id"]): r["verdict"] for r in rows} == db_verdicts
    assert len(defects) == sql(db, "SELECT COUNT(*) FROM defects")[0][0]
    reviewed = {int(r["inspection_id"]): r["review"] for r in rows if r["review"]}
    assert reviewed == {2: "confirmed", 4: "false_alarm"}


def test_html_is_self_contained_with_kpis_charts_and_reject_thumbnails(filled):
    store, tmp, db = filled
    (path,) = export_report(store, ReportFilter(), "html", tmp / "report.html")
    html = path.read_text()
    parsed = _Collect()
    parsed.feed(html)
    text = " ".join(t for t in parsed.text if t)
    passed, failed, errors = (
        sql(db, f"SELECT COUNT(*) FROM inspections WHERE verdict = '{v}'")[0][0] for v in ("PASS", "FAIL", "ERROR")
    )
    assert f"{passed} Pass" in text and f"{failed} Fail" in text and f"{errors} Error" in text
    assert f"{100 * passed / (passed + failed):.1f} % Yield" in text
    assert "1 Confirmed defects" in text and "1 False alarms" in text
    frames = [i for i in parsed.images if i["alt"].startswith("overlay of inspection")]
    crops = [i for i in parsed.images if i["alt"].startswith("defect ")]
    assert len(frames) == failed and len(crops) == sql(db, "SELECT COUNT(*) FROM defect_pictures")[0][0] > 0
    assert all(i["src"].startswith(("data:image/jpeg;base64,", "data:image/svg+xml;base64,")) for i in parsed.images)
    charts = [i for i in parsed.images if i["src"].startswith("data:image/svg+xml;base64,")]
    assert len(charts) == 2 and "http" not in html  # self-contained: nothing fetched from anywhere


def pdf_text(document) -> str:
    """A PDF's words as one string: lines a table cell wrapped are joined again, ligatures
    spelled out."""
    return "".join(page.get_text() for page in document).replace("\n", "").replace("\ufb01", "fi")


def test_pdf_renders_with_every_section(filled):
    store, tmp, _db = filled
    (path,) = export_report(store, ReportFilter(), "pdf", tmp / "report.pdf", print_pdf=write_pdf)
    doc = pymupdf.open(path)
    assert doc.page_count >= 2  # the summary, then the rejects
    text = pdf_text(doc)
    for words in ("Inspection report", "Key figures", "Defects by class", "Rejects", "Label"):
        assert words in text
    pixmap = doc[0].get_pixmap(dpi=50)
    assert pixmap.width > 300  # it rasterises


def test_filters_and_an_empty_period(filled):
    store, tmp, _db = filled
    future = datetime.now() + timedelta(days=365)
    (path,) = export_report(store, ReportFilter(since=future), "html", tmp / "empty.html")
    assert "No inspections" in path.read_text()
    (pdf,) = export_report(store, ReportFilter(since=future), "pdf", tmp / "empty.pdf", print_pdf=write_pdf)
    assert "No inspection matches" in pymupdf.open(pdf)[0].get_text()
    export_report(store, ReportFilter(verdict="FAIL"), "csv", tmp / "fails.csv")
    with (tmp / "fails.csv").open() as f:
        assert {r["verdict"] for r in csv.DictReader(f)} == {"FAIL"}


def test_report_command(filled, capsys):
    _, tmp, db = filled
    status = main(
        [
            "report",
            "--db",
            db,
            "--format",
            "html",
            "--out",
            str(tmp / "cli.html"),
            "--product",
            "Label",
            "--verdict",
            "FAIL",
        ]
    )
    assert status == 0 and (tmp / "cli.html").exists()
    assert (
        main(
            [
                "report",
                "--db",
                db,
                "--out",
                str(tmp / "x.html"),
                "--since",
                "2030-01-02",
                "--until",
                "2030-01-01",
            ]
        )
        == 2
    )
    assert "--since" in capsys.readouterr().err


def test_the_newest_review_is_the_one_reports_count(filled):
    store, tmp, _db = filled
    with store.session() as session, session.begin():
        add_review(session, inspection_id=2, decision="false_alarm")  # the operator changed their mind
    written = export_report(store, ReportFilter(), "csv", tmp / "again.csv")
    with written[0].open() as f:
        reviews = {int(r["inspection_id"]): r["review"] for r in csv.DictReader(f) if r["review"]}
    assert reviews == {2: "false_alarm", 4: "false_alarm"}
    (html,) = export_report(store, ReportFilter(), "html", tmp / "again.html")
    text = html.read_text()
    assert '>0</span><br><span class="l">Confirmed defects' in text
    assert '>2</span><br><span class="l">False alarms' in text


def test_a_report_that_cannot_be_written_is_an_error_naming_the_path(filled, capsys):
    _, tmp, db = filled
    (tmp / "a folder").mkdir()
    assert main(["report", "--db", db, "--format", "csv", "--out", str(tmp / "a folder")]) == 2
    assert f"inspector report: error: {tmp / 'a folder'}: Is a directory" in capsys.readouterr().err


def test_a_report_on_a_database_that_does_not_exist_is_an_error_not_an_empty_report(tmp_path, capsys):
    typo = tmp_path / "lines" / "resluts.db"
    assert main(["report", "--db", str(typo), "--out", str(tmp_path / "r.html")]) == 2
    assert f"{typo}: no such database" in capsys.readouterr().err
    assert not typo.exists() and not (tmp_path / "r.html").exists()


def test_a_report_on_a_file_that_is_not_an_inspector_database_leaves_it_as_it_was(tmp_path, capsys):

    empty, other = tmp_path / "empty.db", tmp_path / "other.db"
    empty.touch()
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE parts (id INTEGER)")
    for path in (empty, other):
        assert main(["report", "--db", str(path), "--out", str(tmp_path / "r.html")]) == 2
        assert f"{path}: not an Inspector results database" in capsys.readouterr().err
    assert empty.stat().st_size == 0
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("parts",)]


def test_a_report_on_a_run_that_is_not_in_the_database_names_the_runs_it_holds(filled, capsys):
    store, tmp, db = filled
    with store.session() as session:
        runs = sorted(session.scalars(select(Run.id)))
    out = tmp / "run.html"
    assert main(["report", "--db", db, "--out", str(out), "--run", str(runs[-1] + 998)]) == 2
    error = capsys.readouterr().err
    assert f"--run {runs[-1] + 998}: no such run in" in error and f"numbered {runs[0]} to {runs[-1]}" in error
    assert not out.exists()
    assert main(["report", "--db", db, "--out", str(out), "--run", str(runs[0])]) == 0


def test_a_database_that_may_not_be_written_is_reported_from_without_changing_it(filled_file, monkeypatch):
    from inspector.store import database

    store, tmp = filled_file
    store.close()
    db = tmp / "r.db"
    before = db.read_bytes()
    monkeypatch.setattr(database.os, "access", lambda path, mode: mode != os.W_OK)  # an archive: file and folder
    out = tmp / "archive.csv"
    assert main(["report", "--db", str(db), "--format", "csv", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + len(sql(db, "SELECT id FROM inspections"))
    assert db.read_bytes() == before


def test_a_report_never_writes_over_its_database_and_takes_its_format_from_the_name(filled_file, capsys):
    _, tmp = filled_file
    db = tmp / "r.db"
    before = db.read_bytes()
    for out in (db, tmp / "r.db-wal", tmp / "r.db-shm"):
        assert main(["report", "--db", str(db), "--format", "csv", "--out", str(out)]) == 2
        assert f"--out {out} is the database the report is read from" in capsys.readouterr().err
    (tmp / "link.csv").hardlink_to(db)
    assert main(["report", "--db", str(db), "--format", "csv", "--out", str(tmp / "link.csv")]) == 2
    assert db.read_bytes() == before
    with pytest.raises(SystemExit):
        main(["report", "--db", str(db), "--out", str(tmp / "x.html"), "--run", "99999999999999999999"])
    assert "is not a run number" in capsys.readouterr().err
    assert main(["report", "--db", str(db), "--out", str(tmp / "named.csv")]) == 0
    assert (tmp / "named.csv").read_text().startswith("inspection_id,")
    assert main(["report", "--db", str(db), "--out", str(tmp / "named.pdf")]) == 0
    assert (tmp / "named.pdf").read_bytes().startswith(b"%PDF")
    assert main(["report", "--db", str(db), "--out", str(tmp / "named.txt")]) == 0
    assert "<html" in (tmp / "named.txt").read_text().lower()  # no format in the name: HTML


def test_a_date_too_far_back_is_refused_as_a_date(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--out", "r.html", "--since", "0001-01-01"])
    assert "'0001-01-01' is too far from today" in capsys.readouterr().err


def test_names_that_look_like_formulas_or_math_are_written_as_text(filled):
    store, tmp, _db = filled
    with store.session() as session, session.begin():  # names given by someone careless, or hostile
        session.execute(
            text("UPDATE inspections SET product = '=HYPERLINK(\"http://x\")', image_path = '$\\frac{a}{b}$.png'")
        )
    paths = export_report(store, ReportFilter(), "csv", tmp / "r.csv")
    with paths[0].open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["product"].startswith("'=HYPERLINK") for r in rows)  # quoted, not run
    (pdf,) = export_report(store, ReportFilter(), "pdf", tmp / "r.pdf", print_pdf=write_pdf)
    with pymupdf.open(pdf) as document:
        assert document.page_count >= 2  # the whole report, the rejects with the $ names included
        assert "$\\frac{a}{b}$.png" in pdf_text(document)


def test_a_report_of_one_station_holds_only_its_results(filled, line, capsys):  # noqa: F811
    from inspector.services.inspection_loop import RunSettings

    store, tmp, db = filled
    pipeline, folder, _ = line
    run_inspection(pipeline, store, FileSource([folder / "p1.png"]), RunSettings(station="line 4", force=True))
    for station, expected in (("line 4", 1), (None, 8)):
        out = tmp / f"{station}.csv"
        assert main(["report", "--db", db, "--out", str(out), *(["--station", station] if station else [])]) == 0
        with out.open() as f:
            found = list(csv.DictReader(f))
        assert len(found) == expected
    assert {r["station"] for r in found} >= {"line 4"} and len({r["station"] for r in found}) == 2


def test_a_report_a_customer_can_read(filled, monkeypatch):
    """Lot, order and sign-off; times in the plant's zone, said; file names, not paths;
    the yield once false alarms are taken back; defect classes in words; page numbers."""
    import time

    from inspector.report import ReportInfo

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        store, tmp, _db = filled
        info = ReportInfo(lot="L-2026-117", order="PO 4711", signed_by="A. Smith")
        (html_path,) = export_report(store, ReportFilter(), "html", tmp / "r.html", info)
        (pdf_path,) = export_report(store, ReportFilter(), "pdf", tmp / "r.pdf", info, print_pdf=write_pdf)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    html = html_path.read_text()
    with pymupdf.open(pdf_path) as document:
        printed = pdf_text(document)
        pages = document.page_count
        last_page_words = document[-1].get_text().split()
    for said in (html, printed):
        assert "L-2026-117" in said and "PO 4711" in said and "A. Smith" in said
        assert "CET" in said or "CEST" in said  # the plant's zone, stated
        assert str(tmp) not in said.replace(f'title="{tmp}', "")  # file names shown, paths only in a tooltip
        assert "Yield after review" in said
    assert str(pages) in last_page_words  # numbered pages
    k = _kpis_of(store)
    assert f"{100.0 * (k.passed + k.false_alarms) / (k.passed + k.failed):.1f} %" in html


def _kpis_of(store):
    from inspector.report.query import gather

    with store.session() as session:
        return gather(session, ReportFilter()).kpis


def test_a_report_made_elsewhere_finds_the_pictures_of_a_run_given_relative_paths(line, tmp_path, monkeypatch):  # noqa: F811
    pipeline, folder, _ = line
    monkeypatch.chdir(folder.parent)
    store = open_store("r.db")
    run_inspection(pipeline, store, FileSource([Path(folder.name)]))  # "parts", as typed
    store.close()
    assert all(Path(p).is_absolute() for (p,) in sql(folder.parent / "r.db", "SELECT image_path FROM inspections"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", "--db", str(folder.parent / "r.db"), "--out", "r.html"]) == 0
    assert "frame not available" not in (elsewhere / "r.html").read_text()
