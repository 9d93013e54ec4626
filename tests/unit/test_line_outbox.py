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
    assert path.read_bytes().count(b"\n") < 10  # the 16 lines written, less what was done when it was written anew
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


def test_writing_the_journal_anew_keeps_the_promises_of_parts_still_inspected(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox, "COMPACT_AFTER", 3)
    path = tmp_path / "j"
    journal = Journal(path)
    journal.promise("1-1", "a")
    journal.add("1-1", b'{"id":"1-1"}')
    journal.promise("1-2", "b")  # the next trigger, accepted before the broker took 1-1
    journal.done("1-1")  # nothing waits to be sent: the journal is written anew
    # killed now, while part 1-2 is inspected
    again = Journal(path)
    assert again.broken == [("1-2", "b")] and not again.pending
    again.close()
    assert Journal(path).broken == [("1-2", "b")]  # until its ERROR result is added


def test_the_journal_stays_short_while_the_broker_cannot_be_reached(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox, "COMPACT_AFTER", 20)
    path = tmp_path / "j"
    journal = Journal(path)
    for k in range(200):  # an outbox of 5 that is full: the oldest result is dropped for each new one
        journal.promise(f"1-{k}", f"t{k}")
        journal.add(f"1-{k}", b'{"id":"1-%d"}' % k)
        if k >= 5:
            journal.done(f"1-{k - 5}")
    journal.close()
    assert path.read_bytes().count(b"\n") <= 20
    again = Journal(path)
    assert list(again.pending) == [f"1-{k}" for k in range(195, 200)] and not again.broken


def test_a_cut_off_last_line_is_not_replayed_and_what_follows_starts_on_its_own_line(tmp_path):
    path = tmp_path / "j"
    path.write_bytes(
        b'+ 1-1 {"id":"1-1","verdict":"PASS"}\n- 1-1\n'
        b'+ 1-0 {"id":"1-0","ver\n'  # damaged in the middle: not JSON
        b'? 1-2 "t"\n+ 1-2 {"id":"1-2","verd'  # killed while writing the result of 1-2
    )
    journal = Journal(path)
    assert not journal.pending and journal.broken == [("1-2", "t")]
    journal.add("1-2", b'{"id":"1-2","verdict":"ERROR"}')
    journal.close()
    again = Journal(path)
    assert again.pending == {"1-2": b'{"id":"1-2","verdict":"ERROR"}'} and not again.broken
