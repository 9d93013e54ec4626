"""The plain progress lines of the commands."""

from __future__ import annotations

import io

from inspector.cli.progress import Progress


def test_progress_lines_write_control_characters_in_names_as_escapes():
    out = io.StringIO()
    progress = Progress(stream=out)
    progress.step("PASS  line\nfeed\tpart_ü.png")
    assert out.getvalue() == "PASS  line\\nfeed\\tpart_ü.png\n"
