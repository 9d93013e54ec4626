"""The journal of results not yet sent: what was added and not taken survives a restart,
in order; a line half-written by a killed process is skipped, not the end of the station."""

from __future__ import annotations

from inspector.line import outbox
from inspector.line.outbox import Journal


def test_what_was_not_taken_comes_back_in_order_after_a_restart(tmp_path):
    path = tmp_path / "line" / "station.mqtt-outbox"
    journal = Journal(path)
    for k in range(1, 5):
        journal.add(f"7-{k}", b'{"id":"7-%d"}' % k)
    journal.done("7-2")
    journal.done("7-9")  # never added: nothing happens
    journal.close()
    with open(path, "ab") as killed:  # a process killed in the middle of a line
        killed.write(b"+ 7-5 ")
    again = Journal(path)
    assert list(again.pending) == ["7-1", "7-3", "7-4"]
    assert again.pending["7-3"] == b'{"id":"7-3"}'
    again.close()
    assert path.read_bytes().count(b"\n") == 3  # written anew with only what waits


def test_an_empty_journal_is_started_anew_once_it_grew_long(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox, "COMPACT_AFTER", 10)
    path = tmp_path / "j"
    journal = Journal(path)
    for k in range(8):
        journal.add(f"1-{k}", b"{}")
        journal.done(f"1-{k}")
    journal.close()
    assert path.read_bytes().count(b"\n") == 4  # the 16 lines written less the 12 before it was emptied
    assert not Journal(path).pending


def test_a_promise_without_its_result_is_found_broken_after_a_restart(tmp_path):
    path = tmp_path / "j"
    journal = Journal(path)
    journal.promise("3-1", "plc 1")
    journal.add("3-1", b'{"id":"3-1"}')
    journal.done("3-1")
    journal.promise("3-2", "plc 2")  # killed while this part was inspected
    journal.close()
    again = Journal(path)
    assert again.broken == [("3-2", "plc 2")] and not again.pending
