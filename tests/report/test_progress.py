"""Progress when standard error is not a terminal: a line every few seconds, silence for short
stages and with --quiet."""

import re

from riskmodel.cli.commands import _progress


def test_progress_logs_lines_when_not_a_terminal(capsys):
    log = _progress(False, "dates", "backtest", every_s=0.0)  # every call is "a few seconds"
    for done in (1, 2, 3):
        log(done, 3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"riskmodel: backtest: 3/3 dates, \d+\.\d s elapsed", lines[-1])


def test_short_stages_and_quiet_runs_stay_silent(capsys):
    assert _progress(True) is None
    log = _progress(False)  # 5 s between lines: a stage this short never logs
    for done in range(1, 1001):
        log(done, 1000)
    assert capsys.readouterr().err == ""
