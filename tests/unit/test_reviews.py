"""Reviews of a part and of its defects: who gave them, and what reports count."""

from __future__ import annotations

import pytest

from inspector.errors import StoreError
from inspector.report.query import ReportFilter, gather, history, inspection_detail, record_review
from inspector.services.inspection_loop import run_inspection
from inspector.sources.files import FileSource
from inspector.store.database import open_store
from tests.unit.test_store_and_loop import line  # noqa: F401  (fixture)


def test_a_defect_review_is_its_own_and_leaves_the_parts_decision_alone(line):  # noqa: F811
    pipeline, folder, tmp = line
    store = open_store(str(tmp / "r.db"))
    run_inspection(pipeline, store, FileSource([folder]))
    _, rows = history(store, ReportFilter(verdict="FAIL"))
    first, second = rows[0].inspection_id, rows[1].inspection_id
    defect = inspection_detail(store, first).defect_ids[0]

    record_review(store, first, "confirmed", operator=" Ana ", note="burr ")
    record_review(store, first, "false_alarm", defect_id=defect, operator="Ana")
    shown = inspection_detail(store, first)
    assert (shown.review, shown.defect_reviews[0]) == ("confirmed", "false_alarm")
    _, rows = history(store, ReportFilter(verdict="FAIL"))
    assert {r.inspection_id: r.review for r in rows}[first] == "confirmed"
    with store.session() as session:
        kpis = gather(session, ReportFilter()).kpis
    assert (kpis.confirmed, kpis.false_alarms) == (1, 0)  # the defect's false alarm is not the part's

    with pytest.raises(StoreError, match=f"inspection #{second} has no defect #{defect}"):
        record_review(store, second, "confirmed", defect_id=defect, operator="Ana")
    with pytest.raises(StoreError, match="there is no inspection #999"):
        record_review(store, 999, "confirmed", operator="Ana")
    assert inspection_detail(store, second).review is None
    store.close()
