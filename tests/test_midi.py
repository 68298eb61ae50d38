"""MIDI mapping and learn mode with real mido messages (no port needed), and the clear no-port line."""

import sys

import pytest

mido = pytest.importorskip("mido")

from realtime.control.plane import Action, Command, ShowState, apply_action  # noqa: E402
from realtime.errors import ConfigError, DreamcamError  # noqa: E402
from realtime.io.hud import is_alert  # noqa: E402
from realtime.params import DreamParams  # noqa: E402
from realtime.show.midi import MidiMapper, dumps_mapping, load_mapping, make_mapping, open_port  # noqa: E402
from realtime.show.plan import ShowControl  # noqa: E402

LAYERS = ("stem", "block0", "block1", "block2", "logits")


def cc(control: int, value: int) -> "mido.Message":
    return mido.Message("control_change", control=control, value=value)


def test_knobs_set_parameters_across_their_live_range():
    mapper = MidiMapper(
        {1: make_mapping("strength"), 2: make_mapping("steps"), 3: make_mapping("layer")}, LAYERS
    )
    assert mapper.translate(cc(1, 127)) == Command(Action.SET, {"lr": 0.15}, "midi")
    assert mapper.translate(cc(1, 0)) == Command(Action.SET, {"lr": 0.0}, "midi")
    assert mapper.translate(cc(2, 127)) == Command(Action.SET, {"steps": 8}, "midi")
    assert mapper.translate(cc(2, 0)) == Command(Action.SET, {"steps": 1}, "midi")
    assert mapper.translate(cc(3, 0)) == Command(Action.SET, {"layer": "stem"}, "midi")
    assert mapper.translate(cc(3, 127)) == Command(Action.SET, {"layer": "block2"}, "midi")  # never logits
    assert mapper.translate(cc(9, 64)) is None  # unmapped
    assert mapper.translate(mido.Message("note_on", note=60)) is None


def test_buttons_fire_once_per_press():
    mapper = MidiMapper({64: make_mapping("freeze"), 65: make_mapping("preset:3")})
    assert mapper.translate(cc(64, 127)) == Command(Action.FREEZE, None, "midi")
    assert mapper.translate(cc(64, 127)) is None  # still held
    assert mapper.translate(cc(64, 0)) is None  # released
    assert mapper.translate(cc(64, 100)) == Command(Action.FREEZE, None, "midi")
    assert mapper.translate(cc(65, 127)) == Command(Action.PRESET, 3, "midi")


def test_knob_changes_reach_the_show_state():
    state = ShowState(DreamParams(), LAYERS)
    mapper = MidiMapper({7: make_mapping("persistence", 0.5, 1.0)})
    apply_action(state, mapper.translate(cc(7, 127)))
    assert state.params.persistence == 1.0
    apply_action(state, mapper.translate(cc(7, 0)))
    assert state.params.persistence == 0.5


def test_learn_mode_binds_the_moved_control_to_the_next_parameter_key():
    state = ShowState(DreamParams(), LAYERS)
    mapper = MidiMapper({}, LAYERS)
    show = ShowControl(state, midi_mapper=mapper)
    show.handle(Action.MIDI_LEARN)
    assert "move a control" in show.hud_lines()[0]
    assert show.intents([Action.STRONGER]) == [Action.STRONGER]  # no control moved yet: keys work
    assert mapper.translate(cc(21, 90)) is None  # learn mode: the control is noted, not applied
    assert "CC 21" in show.hud_lines()[0]
    assert show.intents([Action.TOGGLE_FULLSCREEN, Action.MORE_STEPS]) == [Action.TOGGLE_FULLSCREEN]
    assert not mapper.learning and mapper.mappings[21].target == "steps"
    assert mapper.translate(cc(21, 127)) == Command(Action.SET, {"steps": 8}, "midi")
    # buttons learn too: freeze
    show.handle(Action.MIDI_LEARN)
    mapper.translate(cc(22, 0))
    assert show.intents([Action.FREEZE]) == []
    assert mapper.translate(cc(22, 127)) == Command(Action.FREEZE, None, "midi")


def test_learned_mappings_are_saved_as_a_new_file_that_loads_back(tmp_path):
    mapper = MidiMapper({1: make_mapping("lr", 0.01, 0.1)})
    assert mapper.save_learned(str(tmp_path)) is None  # nothing learned: no file
    mapper.start_learn()
    mapper.translate(cc(5, 1))
    mapper.intercept([Command(Action.PRESET, 4)])
    path = mapper.save_learned(str(tmp_path))
    assert load_mapping(path) == mapper.mappings
    assert mapper.save_learned(str(tmp_path)) != path  # never overwrites


def test_mapping_file(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(
        '[cc]\n1 = "strength"\n2 = { target = "persistence", min = 0.6, max = 0.99 }\n64 = "record"\n'
    )
    mappings = load_mapping(str(path))
    assert mappings[1] == make_mapping("lr") and mappings[64].target == "record"
    assert (mappings[2].low, mappings[2].high) == (0.6, 0.99)
    assert "[cc]" in dumps_mapping(mappings)


@pytest.mark.parametrize(
    "text, words",
    [
        ('[cc]\n1 = "wobble"\n', ["cc 1", "unknown target 'wobble'"]),
        ('[cc]\n200 = "lr"\n', ["0-127"]),
        ('[cc]\n1 = { target = "lr", min = "low" }\n', ["min and max must be numbers"]),
        ('[notes]\n1 = "lr"\n', ["only a [cc] table"]),
        ("[cc\n", ["not valid TOML"]),
    ],
)
def test_bad_mapping_file_is_one_line(tmp_path, text, words):
    path = tmp_path / "map.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_mapping(str(path))
    assert "\n" not in str(info.value) and "map.toml" in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_missing_port_or_midi_system_is_one_clear_line():
    with pytest.raises(DreamcamError) as info:
        open_port("no such controller")
    message = str(info.value)
    assert "\n" not in message
    # depending on the machine: no rtmidi, no MIDI system (no ALSA sequencer here), or no such port
    assert any(words in message for words in ("pip install", "no MIDI system", "is not there"))


def test_midi_without_the_vj_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtmidi", None)  # import rtmidi now raises ImportError
    with pytest.raises(DreamcamError, match=r"MIDI input needs .*dreamcam\[vj\]"):
        open_port("any controller")


def test_l_without_a_controller_says_there_is_none(caplog):
    show = ShowControl(ShowState(DreamParams(), LAYERS))  # started without --midi
    show.handle(Action.MIDI_LEARN)
    alerts = [line for line in show.hud_lines() if is_alert(line)]
    assert len(alerts) == 1 and "no MIDI controller" in alerts[0] and "--midi" in alerts[0]
    assert any("no MIDI controller" in r.getMessage() for r in caplog.records)
