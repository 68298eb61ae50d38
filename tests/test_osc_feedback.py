"""OSC feedback over real UDP loopback: a python-osc server stands in for TouchOSC / TouchDesigner."""

import queue
import threading

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from realtime.control.plane import Action, Command, ShowState, apply_action
from realtime.errors import ConfigError
from realtime.params import DreamParams
from realtime.show.osc import OscControl, OscFeedback, parse_host_port
from realtime.show.plan import ShowControl
from realtime.show.presets import bundled_dir, load_folder, load_look

WAIT_S = 5.0
FRAME = np.zeros((18, 32, 3), np.uint8)
START = DreamParams(layer="block5", lr=0.03, steps=2, persistence=0.5)  # not the defaults: they move
STATE_NAMES = {"layer", "strength", "steps", "persistence", "preset", "record", "fps"}


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def controller():
    """A real OSC server on a free loopback port, collecting (address, value) pairs."""
    received: queue.Queue = queue.Queue()
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.put((address, *args)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()
    thread.join(WAIT_S)


def _collect(received: queue.Queue, count: int) -> dict[str, object]:
    """The next `count` messages (bounded wait) as {name: value}; fails if fewer arrive."""
    messages = {}
    for _ in range(count):
        address, value = received.get(timeout=WAIT_S)
        messages[address.removeprefix("/dreamcam/")] = value
    return messages


def _nothing_more(received: queue.Queue) -> bool:
    try:
        received.get(timeout=0.2)
    except queue.Empty:
        return True
    return False


@pytest.fixture
def show(controller):
    port, _ = controller
    clock = FakeClock()
    state = ShowState(START, ("block3", "block5", "block10"), presets=load_folder(bundled_dir()))
    control = ShowControl(state, feedback=OscFeedback("127.0.0.1", port, clock=clock), default_layer="block5")
    yield control, clock
    control.close()


def test_the_whole_state_goes_out_at_once_then_only_changes_then_all_again_each_second(show, controller):
    control, clock = show
    _, received = controller
    control.output(FRAME)
    first = _collect(received, len(STATE_NAMES))
    assert first == {
        "layer": "block5",
        "strength": pytest.approx(0.03),
        "steps": 2,
        "persistence": pytest.approx(0.5),
        "preset": "",
        "record": 0,
        "fps": 0.0,
    }
    control.output(FRAME)  # nothing changed, the second is not over: silence
    assert _nothing_more(received)

    apply_action(control.state, Action.MORE_STEPS)  # a key press moves the controller's fader
    clock.now += 0.1
    control.output(FRAME)
    assert _collect(received, 1) == {"steps": 3}
    assert _nothing_more(received)

    apply_action(control.state, Command(Action.PRESET, "eyes", "midi"))  # a whole look changes
    control.output(FRAME)
    eyes = load_look("eyes")
    before = {"layer": "block5", "strength": 0.03, "steps": 3, "persistence": 0.5}
    after = {"layer": eyes.layer, "strength": eyes.lr, "steps": eyes.steps, "persistence": eyes.persistence}
    expected = {"preset": "eyes"} | {name: value for name, value in after.items() if value != before[name]}
    changed = _collect(received, len(expected))  # what the look changed, and nothing else
    assert changed == {
        name: pytest.approx(value) if isinstance(value, float) else value for name, value in expected.items()
    }
    assert _nothing_more(received)

    clock.now += 1.0
    control.output(FRAME)
    assert set(_collect(received, len(STATE_NAMES))) == STATE_NAMES  # a controller started late catches up


def test_feedback_speaks_the_input_address_space(show, controller):
    """Every value sent back (except fps, which only goes out) is a message OSC input accepts."""
    control, _ = show
    _, received = controller
    control.output(FRAME)
    sent = _collect(received, len(STATE_NAMES))
    osc_in = OscControl(0)
    try:
        for name, value in sent.items():
            if name == "fps":
                continue
            assert osc_in.translate(f"/dreamcam/{name}", [value]) is not None, name  # not Rejected
    finally:
        osc_in.close()


def test_a_controller_that_is_gone_costs_the_show_nothing():
    feedback = OscFeedback("127.0.0.1", 9, clock=FakeClock())  # the discard port: nobody listens
    state = ShowState(DreamParams(), ("block5",))
    control = ShowControl(state, feedback=feedback, default_layer="block5")
    for _ in range(20):
        control.output(FRAME)
    assert feedback.sent + feedback.failed >= len(STATE_NAMES)
    assert control.hud_lines()[-1].startswith("osc feedback → 127.0.0.1:9")
    control.close()


@pytest.mark.parametrize("text", ["9000", "host:", ":9000", "host:0", "host:70000", "host:port"])
def test_bad_feedback_addresses_are_one_line(text):
    with pytest.raises(ConfigError, match="--osc-feedback must be HOST:PORT"):
        parse_host_port("--osc-feedback", text)
    assert parse_host_port("--osc-feedback", "192.168.1.20:9001") == ("192.168.1.20", 9001)
