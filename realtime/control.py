"""Controls: user intents (`Action`) and how they change the show between frames.

Input devices (the window's keys today; OSC, MIDI and presets later) only translate their events
into Actions; `apply_action` is the one place that turns an Action into new, validated
`DreamParams` or a change of show state (freeze, HUD, snapshot, quit).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from realtime.errors import DreamcamError
from realtime.params import DreamParams

log = logging.getLogger(__name__)


class Action(enum.Enum):
    QUIT = "quit"
    FREEZE = "freeze"  # toggle: keep showing the current dream, stop dreaming
    PREV_LAYER = "prev_layer"
    NEXT_LAYER = "next_layer"
    STRONGER = "stronger"
    WEAKER = "weaker"
    FEWER_STEPS = "fewer_steps"
    MORE_STEPS = "more_steps"
    SNAPSHOT = "snapshot"
    TOGGLE_HUD = "toggle_hud"
    TOGGLE_FULLSCREEN = "toggle_fullscreen"


STRENGTH_FACTOR = 1.25  # one ↑ press multiplies the step size by this
MAX_LIVE_STEPS = 8


@dataclass
class ShowState:
    """What the controls can change: the dream parameters plus the show's own switches."""

    params: DreamParams
    layers: tuple[str, ...]  # the model's dreamable layers, for ←/→
    frozen: bool = False
    hud: bool = True
    quit: bool = False
    pending: list[Action] = field(default_factory=list)  # for the sinks: SNAPSHOT, TOGGLE_FULLSCREEN


def apply_action(state: ShowState, action: Action) -> None:
    """Change `state` for one action; a change that would be invalid is logged and ignored."""
    p = state.params
    try:
        if action is Action.QUIT:
            state.quit = True
        elif action is Action.FREEZE:
            state.frozen = not state.frozen
        elif action is Action.TOGGLE_HUD:
            state.hud = not state.hud
        elif action in (Action.PREV_LAYER, Action.NEXT_LAYER):
            state.params = p.replace(layer=_next_layer(state.layers, p.layer, action is Action.NEXT_LAYER))
        elif action is Action.STRONGER:
            state.params = p.replace(lr=min(1.0, p.lr * STRENGTH_FACTOR))
        elif action is Action.WEAKER:
            state.params = p.replace(lr=p.lr / STRENGTH_FACTOR)
        elif action is Action.MORE_STEPS:
            state.params = p.replace(steps=min(MAX_LIVE_STEPS, p.steps + 1))
        elif action is Action.FEWER_STEPS:
            state.params = p.replace(steps=max(1, p.steps - 1))
        else:
            state.pending.append(action)
    except DreamcamError as exc:
        log.warning("ignored %s: %s", action.value, exc)
        return
    if state.params is not p:
        log.info(
            "%s -> layer=%s lr=%.4g steps=%d",
            action.value,
            state.params.layer,
            state.params.lr,
            state.params.steps,
        )


def _next_layer(layers: tuple[str, ...], current: str | None, forward: bool) -> str:
    """Step through the dreamable layers; a composite objective steps from its first layer."""
    dreamable = [name for name in layers if name != "logits"]
    head = (current or "").split("+")[0].split("*")[-1].split(":")[0]
    index = dreamable.index(head) if head in dreamable else 0
    return dreamable[(index + (1 if forward else -1)) % len(dreamable)]
