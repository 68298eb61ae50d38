"""Keepsakes (issue 29): the store (ids, files, time to live, archive, a full disk) and the booth
(countdown, capture, hold, card), on fake clocks: no sleeps but the store's own thread's writes."""

import logging
import os
import threading
import time

import cv2
import numpy as np
import pytest

from realtime.io.overlay import Banner, Countdown, KeepsakeCard
from realtime.show import keepsake as ks
from realtime.show.booth import BoothTimes, KeepsakeBooth
from realtime.show.keepsake import ID_PATTERN, KeepsakeError, KeepsakeStore, Status


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    store = KeepsakeStore(str(tmp_path / "cache"), ttl_s=60.0, clock=clock)
    yield store
    store.close()


def picture(width=320, height=180, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def written(keepsake):
    assert keepsake.ready.wait(20), "the store's thread did not write the keepsake"
    return keepsake


def read_png(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# --- the store ---------------------------------------------------------------------------------


def test_each_keepsake_has_its_own_128_bit_id(store):
    ids = [written(store.take(picture(16, 16))).id for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(ID_PATTERN.fullmatch(i) and len(i) >= 22 for i in ids)  # 16 random bytes, base64url
    assert ks.ID_BYTES * 8 >= 128


def test_the_picture_is_written_whole_at_its_own_size_off_the_callers_thread(store):
    image = picture(1280, 720)
    threads = []
    keepsake = written(store.take(image.copy(), then=lambda k: threads.append(threading.current_thread())))
    assert threads and threads[0] is not threading.current_thread()  # the PNG is never made by the show
    assert (keepsake.width, keepsake.height) == (1280, 720)
    np.testing.assert_array_equal(read_png(keepsake.path), image)  # lossless, full resolution
    assert oct(os.stat(store.folder).st_mode & 0o777) == "0o700"  # pictures of people: this user's only
    assert oct(os.stat(store.root).st_mode & 0o777) == "0o700"
    assert keepsake.id not in keepsake.path  # nothing on disk leads to a link
    assert store.find(keepsake.id) == (Status.LIVE, keepsake)


def test_an_expired_keepsake_is_deleted_and_says_so_then_is_forgotten(store, clock):
    keepsake = written(store.take(picture()))
    clock.now += 59.0
    assert store.find(keepsake.id)[0] is Status.LIVE
    clock.now += 1.0
    assert store.find(keepsake.id) == (Status.EXPIRED, None)
    assert not os.path.exists(keepsake.path) and store.files() == []
    clock.now += ks.GONE_KEPT_S + 1
    store.sweep()
    assert store.find(keepsake.id) == (Status.UNKNOWN, None)


def test_a_disk_far_behind_refuses_a_keepsake_instead_of_queueing_it(store):
    entered, gate = threading.Event(), threading.Event()
    first = store.take(picture(), then=lambda k: (entered.set(), gate.wait(10)))
    assert entered.wait(20)  # the store's thread is held inside the first one
    try:
        for _ in range(ks.MAX_WAITING):
            store.take(picture())
        with pytest.raises(KeepsakeError, match="still being written"):
            store.take(picture())
    finally:
        gate.set()
    written(first)


def test_unknown_and_malformed_ids_are_unknown(store):
    written(store.take(picture()))
    for guess in ("", "x", "A" * 22, "../../etc/passwd", "A" * 65, "é" * 22):
        assert store.find(guess) == (Status.UNKNOWN, None)


def test_the_sweep_deletes_what_is_due_without_anyone_asking(store, clock):
    first = written(store.take(picture(seed=1)))
    clock.now += 30.0
    second = written(store.take(picture(seed=2)))
    clock.now += 31.0
    assert store.sweep() == 1
    assert not os.path.exists(first.path) and os.path.exists(second.path)


def test_the_archive_keeps_a_copy_and_never_overwrites(tmp_path, clock):
    archive = tmp_path / "archive"
    archive.mkdir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    taken = {archive / f"keepsake-{stamp}.png", archive / f"keepsake-{stamp}-1.png"}
    for path in taken:
        path.write_bytes(b"the operator's own file")
    store = KeepsakeStore(str(tmp_path / "cache"), ttl_s=60.0, archive=str(archive), clock=clock)
    try:
        image = picture()
        keepsake = written(store.take(image))
        assert keepsake.archived is not None and keepsake.archived not in {str(p) for p in taken}
        assert all(p.read_bytes() == b"the operator's own file" for p in taken)
        clock.now += 61.0
        store.sweep()
    finally:
        store.close()
    assert not os.path.exists(keepsake.path)  # the link's copy is gone, the archive's stays
    np.testing.assert_array_equal(read_png(keepsake.archived), image)


def test_a_booths_day_keeps_only_what_the_time_to_live_keeps(tmp_path, clock):
    """500 keepsakes, one every 6 s (a 3 s countdown and a 2 s hold between presses) with a 5 minute
    time to live: at most 51 pictures on disk at any time, every one of the 500 counted."""
    store = KeepsakeStore(str(tmp_path / "cache"), ttl_s=300.0, clock=clock)
    most = 0
    try:
        for n in range(500):
            written(store.take(picture(32, 18, seed=n)))
            clock.now += 6.0
            store.sweep()
            most = max(most, len(store.files()))
        assert store.counts() == {"taken_today": 500, "live": 49}  # the last 5 minutes' worth
    finally:
        store.close()
    assert most <= 51
    assert not os.path.exists(store.folder)  # closing the show deletes the rest


def test_the_day_count_starts_again_each_day(tmp_path, clock):
    day = ["2026-12-07"]
    store = KeepsakeStore(str(tmp_path / "cache"), clock=clock, today=lambda: day[0])
    try:
        written(store.take(picture()))
        written(store.take(picture()))
        assert store.counts()["taken_today"] == 2
        day[0] = "2026-12-08"
        assert store.counts()["taken_today"] == 0
        assert written(store.take(picture())).number == 1
    finally:
        store.close()


def test_a_crashed_shows_old_pictures_go_at_the_next_start(tmp_path):
    root = tmp_path / "cache"
    old = root / "show-crashed"
    old.mkdir(parents=True)
    (old / "keepsake-old.png").write_bytes(b"x")
    (old / "keepsake-new.png").write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(old / "keepsake-old.png", (an_hour_ago, an_hour_ago))
    store = KeepsakeStore(str(root), ttl_s=1800.0)
    store.close()
    assert sorted(os.listdir(old)) == ["keepsake-new.png"]  # its link died with it; still young


def test_a_full_disk_is_one_line_and_no_link(tmpfs, clock, caplog):
    disk = tmpfs("64k")
    store = KeepsakeStore(str(disk), ttl_s=60.0, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="realtime.show.keepsake"):
            kept = [written(store.take(picture(640, 360, seed=n))) for n in range(3)]
        assert all(k.failure and "disk full" in k.failure for k in kept)
        assert all(store.find(k.id) == (Status.UNKNOWN, None) for k in kept)
        assert len(caplog.records) == 1 and "disk full" in caplog.records[0].getMessage()
        assert "disk full" in store.failure
        assert os.listdir(store.folder) == []  # no half-written picture
    finally:
        store.close()


def test_a_bad_time_to_live_is_one_line(tmp_path):
    with pytest.raises(KeepsakeError, match="--keepsake-ttl"):
        KeepsakeStore(str(tmp_path), ttl_s=0)


# --- the booth -------------------------------------------------------------------------------


def make_booth(store, clock, **times):
    return KeepsakeBooth(store, lambda i: f"http://10.0.0.5:8080/k/{i}", BoothTimes(**times), clock)


def wait_for_card(booth, clock, other_than=None):
    for _ in range(400):
        lines = booth.overlay()
        cards = [line for line in lines if isinstance(line, KeepsakeCard) and line != other_than]
        if cards:
            return cards[0]
        time.sleep(0.02)  # the store's thread writes the file and makes the QR code
    raise AssertionError("no card")


def test_a_press_counts_down_captures_the_shown_frame_holds_it_then_shows_the_link(store, clock):
    booth = make_booth(store, clock, countdown=3, hold_s=2.0, card_s=10.0)
    live = [picture(1280, 720, seed=n) for n in range(4)]
    assert booth.press()
    assert [str(line) for line in booth.overlay()] == ["keepsake in 3"]
    assert booth.frame(live[0]) is live[0]  # the dream goes on under the countdown
    clock.now += 1.0
    assert [line.number for line in booth.overlay() if isinstance(line, Countdown)] == [2]
    assert not booth.press() and booth.refused == 1  # one at a time
    clock.now += 1.5
    assert [line.number for line in booth.overlay() if isinstance(line, Countdown)] == [1]
    clock.now += 0.5
    shown = booth.frame(live[1])  # the end of the countdown: this frame is the keepsake
    np.testing.assert_array_equal(shown, live[1])
    assert not any(isinstance(line, Countdown) for line in booth.overlay())
    clock.now += 1.0
    np.testing.assert_array_equal(booth.frame(live[2]), live[1])  # held while the visitor looks
    card = wait_for_card(booth, clock)
    keepsake = written(store.find(card.url.rsplit("/", 1)[1])[1])  # the card may go up first
    np.testing.assert_array_equal(read_png(keepsake.path), live[1])  # full resolution, as shown
    assert card.modules and card.short.startswith("10.0.0.5:8080/k/")
    assert "30" not in card.caption and "1 min" in card.caption  # the store's time to live (60 s)
    assert booth.state()["showing"] == card.url and booth.state()["taken_today"] == 1
    clock.now += 1.0
    assert booth.frame(live[3]) is live[3]  # the hold is over: the dream again, the card over it
    clock.now += 10.0
    assert booth.overlay() == [] and booth.state()["showing"] is None


def test_without_a_countdown_the_next_frame_is_the_keepsake(store, clock):
    booth = make_booth(store, clock, countdown=0, hold_s=0.0)
    image = picture(seed=5)
    assert booth.press()
    assert booth.frame(image) is image
    card = wait_for_card(booth, clock)
    keepsake = written(store.find(card.url.rsplit("/", 1)[1])[1])
    np.testing.assert_array_equal(read_png(keepsake.path), image)
    assert booth.press()  # no hold: the next one may start at once


def test_a_press_while_the_card_is_up_starts_the_next_and_the_card_stays(store, clock):
    booth = make_booth(store, clock, countdown=3, hold_s=1.0, card_s=10.0)
    booth.press()
    clock.now += 3.0
    booth.frame(picture())
    first = wait_for_card(booth, clock)
    clock.now += 2.0
    assert booth.press()
    assert first in booth.overlay()  # the last visitor can still scan during the next countdown
    clock.now += 3.0
    booth.frame(picture(seed=9))
    assert wait_for_card(booth, clock, other_than=first) in booth.overlay()
    assert first not in booth.overlay()  # replaced by the next visitor's


def test_a_full_disk_is_a_line_on_screen_and_the_show_goes_on(tmpfs, clock):
    store = KeepsakeStore(str(tmpfs("64k")), ttl_s=60.0, clock=clock)
    booth = make_booth(store, clock, countdown=0, hold_s=0.0, card_s=10.0)
    try:
        booth.press()
        booth.frame(picture(640, 360))
        for _ in range(400):
            banners = [line for line in booth.overlay() if isinstance(line, Banner)]
            if banners:
                break
            time.sleep(0.02)
        assert len(banners) == 1 and "disk full" in banners[0]
        assert not any(isinstance(line, KeepsakeCard) for line in booth.overlay())
        assert booth.state()["failure"] and booth.press()  # the booth is free for the next visitor
    finally:
        store.close()


def test_the_window_draws_the_overlays_with_the_hud_hidden():
    from realtime.io.display import Window
    from realtime.io.qrline import qr_modules

    url = "http://10.0.0.5:8080/k/" + "A" * 22
    image = np.full((360, 640, 3), 90, np.uint8)
    with Window(fullscreen=False, size=(640, 360), hud=False) as window:
        import pygame

        def drawn(*lines):
            window.show(image, list(lines))
            return pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)

        plain = drawn("30 fps")
        assert (plain == 90).all()  # the HUD's text is hidden
        countdown = drawn("30 fps", Countdown(3))
        assert (countdown[:, :320] != 90).any() and (countdown[:, 400:] == 90).all()  # at the left
        card = drawn(KeepsakeCard(url, qr_modules(url), "Take your dream home", "yours for 30 min"))
        right = card[:, 400:]
        assert (right == 255).any() and (right < 30).any()  # a white card with dark modules
        assert (card[:, :200] == 90).all()


def test_the_operators_qr_code_steps_aside_for_a_keepsakes(store, clock):
    from realtime.control.plane import Action, ShowState
    from realtime.io.qrline import QrLine
    from realtime.params import DreamParams
    from realtime.show.plan import ShowControl

    class Remote:  # the web remote's HUD lines in its first 30 s: its address with the token
        def hud_lines(self):
            return ["web http://10.0.0.5:8080", QrLine("scan to control: ...?token=T", ((1, 0), (0, 1)))]

    show = ShowControl(ShowState(DreamParams(), ("block5",)), web=Remote())
    show.booth = make_booth(store, clock, countdown=3)
    assert any(isinstance(line, QrLine) for line in show.hud_lines())
    show.handle(Action.KEEPSAKE)
    lines = show.hud_lines()
    assert [line for line in lines if isinstance(line, Countdown)] and not any(
        isinstance(line, QrLine) for line in lines
    )
    assert "web http://10.0.0.5:8080" in lines


def test_every_controller_reaches_the_keepsake_on_the_one_plane():
    import pygame

    from realtime.control.plane import Action, action_of
    from realtime.io.display import KEY_ACTIONS
    from realtime.show.midi import LEARN_KEYS, make_mapping
    from realtime.show.osc import OscRules

    assert KEY_ACTIONS[pygame.K_k] is Action.KEEPSAKE
    assert list(KEY_ACTIONS.values()).count(Action.KEEPSAKE) == 1  # a key of its own
    assert action_of(OscRules().translate("/dreamcam/keepsake", [])) is Action.KEEPSAKE
    assert OscRules().translate("/dreamcam/keepsake", [0]) is None  # a button's release
    assert LEARN_KEYS[Action.KEEPSAKE] == "keepsake"  # MIDI learn: L, move a control, K
    assert make_mapping("keepsake").target == "keepsake"


def test_an_archive_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(KeepsakeError, match="--keepsake-dir"):
        KeepsakeStore(str(tmp_path / "cache"), archive=str(tmp_path / "file" / "archive"))
