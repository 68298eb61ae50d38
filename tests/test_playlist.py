"""Playlists under a fake clock: items advance, numbers crossfade, a layer change blends residuals."""

import numpy as np
import pytest

from realtime.control.plane import Preset, ShowState, apply_action
from realtime.errors import ConfigError
from realtime.params import DreamParams
from realtime.show.plan import ShowControl
from realtime.show.playlist import Item, PlaylistPlayer, ResidualFade, blend_params, ease, load_playlist

A = DreamParams(layer="block5", lr=0.02, steps=2, persistence=0.8)
B = DreamParams(layer="block5", lr=0.06, steps=4, persistence=0.9)
C = DreamParams(layer="block10", lr=0.04, steps=2, persistence=0.9)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_blend_interpolates_numbers_and_switches_names():
    half = blend_params(A, C, 0.5)
    assert half.lr == pytest.approx(0.03) and half.persistence == pytest.approx(0.85)
    assert half.layer == "block10"  # switched at once; the residual fade does the blending
    assert blend_params(A, B, 0.0) == A.replace(steps=B.steps) and blend_params(A, B, 1.0) is B
    assert blend_params(A, B, 0.5).steps == 4  # a shape field: switched at once, never swept
    assert ease(0.0) == 0.0 and ease(1.0) == 1.0 and ease(0.5) == 0.5 and ease(2.0) == 1.0


def test_playlist_advances_and_crossfades_under_a_fake_clock():
    clock = FakeClock()
    items = [Item("a", A, duration=10, fade=0), Item("b", B, duration=10, fade=4), Item("c", C, 6, 2)]
    player = PlaylistPlayer(items, clock)
    assert player.update() is A and not player.fading
    clock.now += 9.5
    assert player.update() is A
    clock.now += 0.5  # b starts: its fade begins at A
    assert player.update() == A.replace(steps=B.steps) and player.current.name == "b" and player.fading
    clock.now += 2.0  # halfway through the 4 s fade
    mid = player.update()
    assert mid.lr == pytest.approx(0.04) and mid.persistence == pytest.approx(0.85)
    assert A.lr < mid.lr < B.lr
    clock.now += 1.0
    later = player.update()
    assert mid.lr < later.lr < B.lr
    clock.now += 1.0  # the fade is over: b holds
    assert player.update() is B and not player.fading
    clock.now += 6.0  # c starts, then the list wraps round to a
    assert player.update().layer == "block10" and player.current.name == "c"
    clock.now += 6.0
    assert player.update() is A and player.current.name == "a"  # a's fade is 0 s: a hard cut


def test_a_long_stall_skips_ahead_without_losing_the_rhythm():
    clock = FakeClock()
    player = PlaylistPlayer([Item("a", A, 10, 0), Item("b", B, 10, 0)], clock)
    clock.now += 35.0  # a, b, a, then 5 s into b
    assert player.update() is B and player.current.name == "b"
    clock.now += 5.0
    assert player.update() is A


def test_layer_change_blends_the_old_residual_out_while_the_new_grows():
    clock = FakeClock()
    player = PlaylistPlayer([Item("a", A, 10, 0), Item("c", C, 10, 4)], clock)
    old = np.full((2, 3, 3), 40.0, np.float32)
    player.update()
    assert player.residual(old) is old  # no fade yet: the live residual as it is
    clock.now += 10.0
    new = np.full((2, 3, 3), -20.0, np.float32)
    assert player.update().layer == "block10"
    np.testing.assert_allclose(player.residual(new), old)  # u = 0: still all old
    clock.now += 2.0
    player.update()
    np.testing.assert_allclose(player.residual(new), 0.5 * old + 0.5 * new)
    clock.now += 2.0
    player.update()
    assert player.residual(new) is new  # the fade is over


def test_residual_fade_ignores_a_size_change():
    fade = ResidualFade()
    fade.start(np.ones((2, 2, 3), np.float32))
    fade.u = 0.5
    new = np.zeros((4, 4, 3), np.float32)
    assert fade.mix(new) is new


def test_show_control_sends_the_playlist_look_to_the_state_only_when_it_moves():
    clock = FakeClock()
    state = ShowState(DreamParams(), ())
    show = ShowControl(state, playlist=PlaylistPlayer([Item("a", A, 10, 0), Item("b", B, 10, 4)], clock))
    intents = show.intents([])
    assert len(intents) == 1
    for intent in intents:
        apply_action(state, intent)
    assert state.params == A
    assert show.intents([]) == []  # holding: nothing to send
    clock.now += 12.0
    for intent in show.intents([]):
        apply_action(state, intent)
    assert A.lr < state.params.lr < B.lr
    assert any("playlist 2/2 b" in line for line in show.hud_lines())


def test_load_playlist_resolves_names_and_files(tmp_path):
    (tmp_path / "mine.toml").write_text('layer = "block3"\nlr = 0.05\n')
    path = tmp_path / "show.toml"
    path.write_text(
        'fade = 3\n[[item]]\npreset = "eyes"\nduration = 60\n'
        '[[item]]\npreset = "mine.toml"\nduration = 30\nfade = 10\n'
    )
    presets = [Preset("eyes", "eyes.toml", C)]
    items = load_playlist(str(path), presets)
    assert items == [
        Item("eyes", C, 60.0, 3.0),
        Item("mine", DreamParams(layer="block3", lr=0.05), 30.0, 10.0),
    ]


@pytest.mark.parametrize(
    "text, words",
    [
        ("[[item]]\npreset = 'eyes'\n", ["item 1", "duration"]),
        ("[[item]]\npreset = 'nope'\nduration = 5\n", ["item 1", "no preset 'nope'"]),
        ("[[item]]\npreset = 'eyes'\nduration = -5\n", ["'duration' must be a positive"]),
        ("[[item]]\npreset = 'eyes'\nduration = 5\nfade = 9\n", ["longer than duration"]),
        ("[[item]]\npreset = 'eyes'\nduration = 5\nlength = 9\n", ["unknown key 'length'"]),
        ("fade = 2\n", ["no [[item]] tables"]),
        ("[[item]\n", ["not valid TOML"]),
    ],
)
def test_bad_playlist_is_one_line(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_playlist(str(path), [Preset("eyes", "eyes.toml", C)])
    assert "\n" not in str(info.value) and "bad.toml" in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_a_fade_switches_shape_fields_at_once_instead_of_sweeping_them():
    """C2: steps, octaves and octave_scale set the backend's shapes; a fade through them would
    capture a graph nearly every frame. They take the new look's values at the fade's start."""
    a = DreamParams(layer="block5", steps=1, octaves=1, octave_scale=1.3, lr=0.02)
    b = DreamParams(layer="block5", steps=8, octaves=3, octave_scale=1.8, lr=0.06)
    shapes = {
        (p.steps, p.octaves, p.octave_scale) for p in (blend_params(a, b, u / 50) for u in range(1, 51))
    }
    assert shapes == {(8, 3, 1.8)}
    assert blend_params(a, b, 0.5).lr == pytest.approx(0.04)  # the rest still fades


def test_a_fade_start_makes_no_device_copy_outside_the_composers_turn():
    """T3: the playlist starts a fade from the event handling, outside Composer.turn, where a GPU
    copy could land during a capture; the frozen copy is made by the first mix (inside the turn)."""
    import torch

    old = torch.full((1, 3, 2, 2), 10.0)
    clones = []
    real_clone = torch.Tensor.clone

    class Recording(torch.Tensor):
        def clone(self, *args, **kwargs):
            clones.append("clone")
            return real_clone(self, *args, **kwargs)

    fade = ResidualFade()
    fade.start(old.as_subclass(Recording))
    assert clones == []
    fade.u = 0.5
    mixed = fade.mix(torch.zeros(1, 3, 2, 2))
    assert clones == ["clone"] and torch.allclose(mixed, torch.full((1, 3, 2, 2), 5.0))
    fade.mix(torch.zeros(1, 3, 2, 2))
    assert clones == ["clone"]  # frozen once
