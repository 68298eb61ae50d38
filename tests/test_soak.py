"""`dreamcam soak`: the live loop under random control changes, with memory read before and after."""

import json

from realtime.commands.cli import main
from realtime.commands.soak import rss_mb


def test_soak_runs_the_show_with_random_changes_and_reports_memory(capsys):
    assert main(["soak", "--frames", "120", "--dream-size", "64x36", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 120 and result["dreams"] > 30 and result["restarts"] == 0
    assert result["fps"] > 0
    assert 50 < result["rss_start_mb"] <= result["rss_end_mb"] + 50  # sane numbers, read from the OS
    assert result["warmup_frames"] == 12


def test_rss_is_read_from_the_os():
    before = rss_mb()
    ballast = bytearray(64 * 2**20)  # touch 64 MiB
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert rss_mb() - before > 40
    del ballast
