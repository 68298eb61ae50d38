"""A keepsake's link as an attacker sees it (issue 29): a real web remote on a loopback port that
asks for its token as it would on a booth's network, with a real keepsake store behind it.

Each answer is checked by its status: the link opens its own picture and page (200), nothing else
(not the operator's page or state, not another keepsake, no listing), an unknown id is 404, an
expired one 410, and guesses are rate-limited like every other request (429). Fake clocks: the
rate limiter and the store's time to live move only when the test says so.
"""

import http.client
import re

import numpy as np
import pytest

from realtime.show.keepsake import KeepsakeStore
from realtime.show.osc import OscRules
from realtime.show.web import WebRemote
from realtime.show.webguard import RATE_BURST
from tests.test_keepsake import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    """A booth's store: links live 30 minutes."""
    store = KeepsakeStore(str(tmp_path / "cache"), clock=clock)
    yield store
    store.close()


@pytest.fixture
def remote(store, clock):
    remote = WebRemote("127.0.0.1", 0, OscRules(), require_token=True, clock=clock, keepsakes=store)
    yield remote
    remote.close()


def take(store, seed=0):
    image = np.random.default_rng(seed).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    keepsake = store.take(image)
    assert keepsake.ready.wait(20)
    return keepsake


def get(remote, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", remote.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def operator(remote):
    return {"Cookie": f"{remote.guard.cookie}={remote.token}"}


def test_the_link_opens_its_picture_and_page_without_the_token(remote, store):
    keepsake = take(store)
    status, page, response = get(remote, f"/k/{keepsake.id}")
    assert status == 200 and response.headers["Content-Type"].startswith("text/html")
    assert set(re.findall(rb"/k/([A-Za-z0-9_-]{22,})", page)) == {keepsake.id.encode()}  # only its own
    assert b"<script" not in page and b"token" not in page
    for name, value in {
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Robots-Tag": "noindex, nofollow",
    }.items():
        assert response.headers[name] == value
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    status, png, response = get(remote, f"/k/{keepsake.id}.png?download=1")
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{keepsake.name}"'
    assert get(remote, "/k/page.css")[0] == 200
    assert get(remote, f"/k/{keepsake.id}", method="HEAD")[0] == 200


def test_everything_else_still_needs_the_token(remote, store):
    keepsake = take(store)
    for path in ("/", "/api/state", "/api/snapshots", "/static/app.js", "/api/thumb.jpg"):
        assert get(remote, path)[0] == 401, path
        assert get(remote, f"{path}?k={keepsake.id}")[0] == 401, path
    assert get(remote, f"/k/{keepsake.id}", method="POST")[0] == 401  # public: GET and HEAD only


def test_a_token_in_a_keepsake_link_earns_no_cookie(remote, store):
    """The operator's page sets its cookie when its URL carries the token; a keepsake route checks
    no token, so it must never answer ?token=anything with the real one."""
    keepsake = take(store)
    for token in ("guess", remote.token):
        status, _, response = get(remote, f"/k/{keepsake.id}?token={token}")
        assert status == 200 and response.headers.get("Set-Cookie") is None


@pytest.mark.parametrize(
    "path",
    [
        "/k/",
        "/k",
        "/k/page.css/..",
        "/k/../api/state",
        "/k/%2e%2e/api/state",
        "/k/..%2fapi%2fstate",
        "/k/{id}/../../api/state",
        "/k/{id}/..%2f..%2fapi%2fstate",
        "/k/{id}.png/../../etc/passwd",
        "/k/..%2f..%2f..%2fetc%2fpasswd.png",
        "/k/{id}%00.png",
        "/k/{id}.png%2f",
        "/k/.%2e/snapshots/x.png",
        "//k/{id}",
    ],
)
def test_traversal_and_listing_open_nothing(remote, store, path):
    keepsake = take(store)
    status, body, _ = get(remote, path.format(id=keepsake.id))
    assert status in (401, 404), (path, status)  # never 200: no listing, nothing outside a link
    assert b"fps" not in body and b"\x89PNG" not in body


def test_unknown_ids_are_404_and_guessing_is_rate_limited(remote, store):
    take(store)
    statuses = [get(remote, f"/k/{'A' * 21}{n % 10}")[0] for n in range(int(RATE_BURST) + 20)]
    assert statuses[: int(RATE_BURST)] == [404] * int(RATE_BURST)
    assert set(statuses[int(RATE_BURST) :]) == {429}  # like every other request
    assert remote.guard.counts.refused[429] == 20


def test_an_expired_link_is_410_then_its_file_is_gone(remote, store, clock):
    keepsake = take(store)
    clock.now += store.ttl_s
    for path in (f"/k/{keepsake.id}", f"/k/{keepsake.id}.png"):
        status, body, _ = get(remote, path)
        assert status == 410 and b"expired" in body and b"\x89PNG" not in body
    assert store.files() == []


def test_another_visitors_id_with_and_without_the_operators_cookie(remote, store):
    """Visitor A holds A's link. B's picture opens only by B's own id: A's link, A's id changed by a
    character, a listing or the operator's cookie never lead to it; the cookie changes no answer."""
    a, b = take(store, 1), take(store, 2)
    _, a_png, _ = get(remote, f"/k/{a.id}.png")
    _, b_png, _ = get(remote, f"/k/{b.id}.png")
    assert a_png != b_png
    near = a.id[:-1] + ("A" if a.id[-1] != "A" else "B")
    for headers in ({}, operator(remote)):
        assert get(remote, f"/k/{a.id}.png", headers)[1] == a_png
        assert get(remote, f"/k/{b.id}.png", headers)[1] == b_png  # its own id is its only key
        assert get(remote, f"/k/{near}", headers)[0] == 404
        assert get(remote, f"/k/{near}.png", headers)[0] == 404
        assert get(remote, "/k/", headers)[0] == (404 if headers else 401)  # no listing, operator or not
        status, page, _ = get(remote, f"/k/{a.id}", headers)
        assert status == 200 and b.id.encode() not in page
    status, state, _ = get(remote, "/api/state", operator(remote))
    assert status == 200 and a.id.encode() not in state and b.id.encode() not in state


def test_a_link_opened_while_its_picture_is_written_waits_for_it(remote, store):
    import threading

    entered, gate = threading.Event(), threading.Event()
    image = np.zeros((90, 160, 3), np.uint8)
    keepsake = store.take(image, then=lambda k: (entered.set(), gate.wait(10)))
    assert entered.wait(20)
    threading.Timer(0.3, gate.set).start()
    status, png, _ = get(remote, f"/k/{keepsake.id}.png")
    assert status == 200 and png[:4] == b"\x89PNG"


def test_no_store_no_links(clock):
    remote = WebRemote("127.0.0.1", 0, OscRules(), require_token=True, clock=clock)
    try:
        assert get(remote, "/k/" + "A" * 22)[0] == 404
    finally:
        remote.close()


def test_a_flood_of_presses_takes_one_keepsake_at_a_time(remote, store, clock):
    """100 presses at once from the operator's page (or a script with its token): the queue takes
    what one frame can drain (200), refuses the rest while full (400), the door slows the flood
    (429 past the burst), and the booth takes one keepsake: the others are refused while it counts."""
    import json

    from realtime.control.plane import Action, action_of
    from realtime.show.booth import BoothTimes, KeepsakeBooth
    from realtime.show.web import QUEUE_SIZE

    body = json.dumps({"address": "/dreamcam/keepsake", "args": []})
    statuses = []
    for _ in range(100):
        conn = http.client.HTTPConnection("127.0.0.1", remote.port, timeout=10)
        conn.request("POST", "/api/control", body=body, headers=operator(remote))
        statuses.append(conn.getresponse().status)
        conn.close()
    burst = int(RATE_BURST)
    assert statuses[:QUEUE_SIZE] == [200] * QUEUE_SIZE
    assert statuses[QUEUE_SIZE:burst] == [400] * (burst - QUEUE_SIZE)  # "the show is behind"
    assert statuses[burst:] == [429] * (100 - burst)
    booth = KeepsakeBooth(store, remote.keepsake_url, BoothTimes(), clock)
    pressed = [booth.press() for intent in remote.drain() if action_of(intent) is Action.KEEPSAKE]
    assert pressed.count(True) == 1 and booth.refused == QUEUE_SIZE - 1
    assert store.counts()["taken_today"] == 0  # nothing is taken before the countdown ends
