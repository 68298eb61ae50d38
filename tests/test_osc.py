"""OSC over real UDP loopback into a running (headless) pipeline: changes land, garbage is counted."""

import logging
import socket

import numpy as np
import pytest
import torch
from pythonosc.udp_client import SimpleUDPClient

from realtime.control.plane import Action, Command, ShowState
from realtime.dream.dreamer import build_dreamer
from realtime.dream.objectives import parse_objective
from realtime.errors import ConfigError
from realtime.io.sources.opener import open_source
from realtime.loop.pipeline import Pipeline
from realtime.loop.showio import ShowIO
from realtime.params import DreamParams
from realtime.show.osc import OscControl
from realtime.show.plan import ShowControl
from realtime.show.presets import bundled_dir, load_folder

MAX_TICKS = 300  # UDP on loopback arrives within a tick or two; this bound only stops a broken test


@pytest.fixture
def show(lite0, tmp_path):
    """A headless pipeline on the synthetic scene, dreaming at 96x54, with OSC on a free port."""
    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0, seed=0)
    state = ShowState(dreamer.params, lite0.spec.layers, presets=load_folder(bundled_dir()))
    osc = OscControl(0, check_layer=lambda layer: parse_objective(layer, lite0.spec))
    control = ShowControl(state, osc=osc)
    with open_source("synthetic", paced=False, size=(192, 108)) as source:
        pipeline = Pipeline(source, dreamer, state, ShowIO(show=control, snapshot_dir=str(tmp_path)))
        pipeline.tick()
        client = SimpleUDPClient("127.0.0.1", osc.port)
        yield pipeline, client, osc
    control.close()


def tick_until(pipeline: Pipeline, condition) -> None:
    for _ in range(MAX_TICKS):
        pipeline.tick()
        if condition():
            return
    raise AssertionError("the OSC message never arrived")


def test_osc_messages_change_the_running_show(show, caplog):
    pipeline, client, osc = show
    state, dreamer = pipeline.state, pipeline.dreamer
    caplog.set_level(logging.INFO)
    client.send_message("/dreamcam/layer", "block4")
    client.send_message("/dreamcam/strength", 0.05)
    client.send_message("/dreamcam/steps", 3)
    client.send_message("/dreamcam/persistence", 0.5)
    tick_until(pipeline, lambda: state.params.persistence == 0.5)
    assert dreamer.params == state.params  # applied to the dreamer, not just the state
    assert (state.params.layer, state.params.lr, state.params.steps) == ("block4", 0.05, 3)
    assert dreamer.layer_name == "block4"
    assert "osc: lr -> 0.05" in caplog.text and "osc: layer -> block4" in caplog.text
    assert osc.counts.accepted == 4 and osc.counts.ignored == 0

    client.send_message("/dreamcam/preset", "eyes")
    tick_until(pipeline, lambda: state.preset_index == 1)
    assert dreamer.params.layer == "block10"
    client.send_message("/dreamcam/next", [])
    tick_until(pipeline, lambda: state.preset_index == 2)
    client.send_message("/dreamcam/prev", 1)
    client.send_message("/dreamcam/preset", 5)
    tick_until(pipeline, lambda: state.preset_index == 4)

    client.send_message("/dreamcam/freeze", 1)
    tick_until(pipeline, lambda: state.frozen)
    frozen = pipeline.last_output
    assert pipeline.tick() is frozen
    client.send_message("/dreamcam/freeze", [])  # no argument: toggle
    tick_until(pipeline, lambda: not state.frozen)


def test_snapshot_over_osc(show, tmp_path):
    pipeline, client, osc = show
    client.send_message("/dreamcam/snapshot", [])
    tick_until(pipeline, lambda: any(tmp_path.glob("*.png")))


def test_out_of_range_values_are_clamped_and_logged(show, caplog):
    pipeline, client, osc = show
    caplog.set_level(logging.INFO)
    client.send_message("/dreamcam/persistence", 7.5)
    client.send_message("/dreamcam/strength", -1.0)
    client.send_message("/dreamcam/steps", 0)
    tick_until(pipeline, lambda: pipeline.state.params.steps == 1)
    p = pipeline.state.params
    assert (p.persistence, p.lr, p.steps) == (1.0, 0.0, 1)
    assert "persistence 7.5 is out of range 0.0..1.0; clamped to 1.0" in caplog.text
    assert osc.counts.accepted == 3 and osc.counts.ignored == 0


def test_garbage_wrong_types_and_unknown_addresses_are_ignored_and_counted(show):
    pipeline, client, osc = show
    before = pipeline.state.params
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for junk in (b"\x00\xff garbage", b"/dreamcam/steps\x00", b"#bundle\x00" + b"\x01" * 9, b""):
            raw.sendto(junk, ("127.0.0.1", osc.port))
    finally:
        raw.close()
    client.send_message("/dreamcam/steps", "three")  # wrong type
    client.send_message("/dreamcam/layer", 5)  # wrong type
    client.send_message("/dreamcam/layer", "block99")  # no such layer
    client.send_message("/dreamcam/preset", 2.5)
    client.send_message("/dreamcam/freeze", "yes")
    client.send_message("/dreamcam/wobble", 1.0)  # unknown address
    client.send_message("/other/app", 1.0)
    client.send_message("/dreamcam/jitter", 4)  # a good one last: when it lands, the rest has been seen
    tick_until(pipeline, lambda: pipeline.state.params.jitter == 4)
    assert pipeline.state.params == before.replace(jitter=4)
    assert osc.counts.accepted == 1
    assert osc.counts.ignored >= 10  # the empty datagram may not arrive as a packet at all
    assert f"osc :{osc.port}  1 ok  {osc.counts.ignored} ignored" in pipeline.hud_lines()
    pipeline.tick()  # and the show goes on


def test_translate_turns_messages_into_intents():
    osc = OscControl(0)
    try:
        assert osc.translate("/dreamcam/strength", [0.1]) == Command(Action.SET, {"lr": 0.1}, "osc")
        assert osc.translate("/dreamcam/steps", [2.6]) == Command(Action.SET, {"steps": 3}, "osc")
        assert osc.translate("/dreamcam/record", []) == Command(Action.TOGGLE_RECORD, None, "osc")
        assert osc.translate("/dreamcam/record", [0]) == Command(Action.TOGGLE_RECORD, False, "osc")
        assert osc.translate("/dreamcam/preset", [3.0]) == Command(Action.PRESET, 3, "osc")
        assert osc.translate("/dreamcam/next", [0]) is None  # a button's release
    finally:
        osc.close()


def test_port_in_use_is_a_one_line_error():
    first = OscControl(0)
    try:
        with pytest.raises(ConfigError, match="choose another --osc-port"):
            OscControl(first.port)
    finally:
        first.close()


def test_a_nan_layer_or_number_over_osc_is_ignored_and_the_picture_stays(show, caplog):
    pipeline, client, osc = show
    state = pipeline.state
    before = pipeline.tick().astype(int)
    start_lr = state.params.lr
    caplog.set_level(logging.WARNING)
    client.send_message("/dreamcam/layer", "block3+nan*block4")
    client.send_message("/dreamcam/lr", float("nan"))
    client.send_message("/dreamcam/persistence", float("inf"))
    client.send_message("/dreamcam/layer", "1e39*block3")
    client.send_message("/dreamcam/persistence", 0.5)  # a good one after them: all four have arrived
    tick_until(pipeline, lambda: state.params.persistence == 0.5)
    assert osc.counts.ignored == 4 and state.params.layer == "block3" and state.params.lr == start_lr
    frames = [pipeline.tick().astype(int) for _ in range(3)]
    source = pipeline.last_frame.image.astype(int)
    assert all(frame.mean() > 40 for frame in frames)  # not black
    assert np.abs(frames[-1] - source).mean() > 0.5  # and still dreamed (a lost dream adds exactly 0)
    assert before.mean() > 40
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "finite" in warned[0]  # a flood of bad values is one line a second
