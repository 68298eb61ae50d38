"""Presets: TOML round trip, never overwriting, one-line errors, the bundled looks, keys 1-9 and P."""

import os

import pytest

from realtime.control.plane import Action, Command, ShowState, apply_action
from realtime.errors import ConfigError
from realtime.params import DreamParams
from realtime.show.plan import ShowControl
from realtime.show.presets import bundled_dir, dumps, load_folder, load_preset, save_preset

LAYERS = ("stem", "block3", "block5", "block10", "logits")


def test_save_and_load_round_trip_every_field(tmp_path):
    look = DreamParams(
        layer="block5+0.5*block10",
        steps=3,
        octaves=2,
        octave_scale=1.3,
        lr=0.0125,
        jitter=12,
        tv_weight=0.25,
        warm_start="off",
        persistence=0.75,
    )
    path = save_preset(look, str(tmp_path))
    assert load_preset(path) == look
    text = open(path).read()
    for field in ("model", "layer", "steps", "octaves", "octave_scale", "lr", "jitter", "tv_weight"):
        assert f"\n{field} = " in text


def test_save_never_overwrites(tmp_path):
    paths = {save_preset(DreamParams(steps=n), str(tmp_path)) for n in (1, 2, 3)}
    assert len(paths) == 3 and len(os.listdir(tmp_path)) == 3
    assert sorted(load_preset(p).steps for p in paths) == [1, 2, 3]


def test_missing_fields_take_the_defaults(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text('layer = "block3"\nlr = 0.05\n')
    assert load_preset(str(path)) == DreamParams(layer="block3", lr=0.05)


@pytest.mark.parametrize(
    "text, words",
    [
        ("steps = 2\nlayer = 'block5\n", ["not valid TOML", "fix the syntax"]),
        ("strenght = 0.1\n", ["unknown key 'strenght'", "lr"]),
        ("steps = 0\n", ["steps must be between 1 and 100", "fix 'steps'"]),
        ("steps = 'two'\n", ["steps must be a whole number", "fix 'steps'"]),
        ("warm_start = 'sometimes'\n", ["warm start 'sometimes'", "fix 'warm_start'"]),
        ("layer = 'block99'\n", ["no layer 'block99'", "fix 'layer'"]),
        ("model = 'alexnet'\n", ["unknown model 'alexnet'", "fix 'model'"]),
        ("lr = [0.1]\n", ["single value", "fix 'lr'"]),
    ],
)
def test_bad_preset_is_one_line_naming_file_key_and_fix(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_preset(str(path))
    message = str(info.value)
    assert "\n" not in message and "bad.toml" in message
    for word in words:
        assert word in message


def test_missing_preset_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_preset(str(tmp_path / "nope.toml"))


def test_bundled_looks_load_in_order_for_the_default_model():
    presets = load_folder(bundled_dir())
    assert [p.name for p in presets] == ["subtle", "eyes", "fur", "architecture", "wild"]
    assert all(p.params.model == "efficientnet_lite0" for p in presets)
    assert len({p.params for p in presets}) == len(presets)


def test_dumps_writes_toml_that_reads_back(tmp_path):
    text = dumps(DreamParams(layer="class:tabby"), 'a "quoted" look\\ with a backslash')
    path = tmp_path / "x.toml"
    path.write_text(text)
    assert load_preset(str(path)) == DreamParams(layer="class:tabby")


def test_number_keys_recall_presets_and_next_prev_cycle():
    presets = load_folder(bundled_dir())
    state = ShowState(DreamParams(), LAYERS, presets=presets)
    apply_action(state, Command(Action.PRESET, 2))
    assert state.params == presets[1].params and state.preset_index == 1
    apply_action(state, Action.NEXT_PRESET)
    assert state.params == presets[2].params
    apply_action(state, Command(Action.PRESET, "wild"))
    apply_action(state, Action.NEXT_PRESET)  # wraps around
    assert state.params == presets[0].params
    apply_action(state, Action.PREV_PRESET)
    assert state.params == presets[-1].params


def test_recalling_a_missing_preset_is_ignored():
    presets = load_folder(bundled_dir())
    state = ShowState(DreamParams(), LAYERS, presets=presets)
    apply_action(state, Command(Action.PRESET, 9))
    apply_action(state, Command(Action.PRESET, "nonexistent"))
    assert state.params == DreamParams() and state.preset_index == -1


def test_p_saves_the_current_look_into_the_preset_folder_and_it_becomes_recallable(tmp_path):
    state = ShowState(DreamParams(layer="block3", lr=0.07), LAYERS)
    show = ShowControl(state, preset_save_dir=str(tmp_path), preset_dir=str(tmp_path))
    now = [0.0]
    show.save_limit.clock = lambda: now[0]  # a save a second at most
    show.handle(Action.SAVE_PRESET)
    first = state.params
    state.params = first.replace(lr=0.08)
    now[0] += 1.0
    show.handle(Action.SAVE_PRESET)
    now[0] += 1.0
    show.handle(Action.SAVE_PRESET)  # the same look again: not a third file
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2
    assert len(state.presets) == 2 and {p.params for p in state.presets} == {first, state.params}


def test_the_preset_table_in_the_docs_matches_the_code():
    """docs/PRESETS.md lists every DreamParams field with its default and range, as the code has them."""
    import dataclasses
    from pathlib import Path

    from realtime.params import RANGES, WARM_START_MODES

    docs = Path(__file__).resolve().parents[1] / "docs" / "PRESETS.md"
    rows = {}
    for line in docs.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0] not in ("`description`", "`[audio]`"):
            rows[cells[0].strip("`")] = cells
    defaults = DreamParams()
    assert set(rows) == {f.name for f in dataclasses.fields(DreamParams)}
    for name, (_, _, values, default, _) in rows.items():
        value = getattr(defaults, name)
        if name in RANGES:
            low, high, _ = RANGES[name]
            assert values == f"{low:g}-{high:g}" or values == f"{low}-{high}", (name, values)
            assert float(default) == value, name
        elif name == "warm_start":
            assert default == f"`{value}`" and values == ", ".join(f"`{m}`" for m in WARM_START_MODES[::-1])


def test_what_a_show_writes_into_its_folder_is_ignored_by_git():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    paths = ["presets/preset-20261123-120000.toml", "recordings/dreamcam-20261123-120000.mp4"]
    result = subprocess.run(["git", "check-ignore", *paths], cwd=root, capture_output=True, text=True)
    assert result.stdout.split() == paths
