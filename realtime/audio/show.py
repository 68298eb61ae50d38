"""AudioShow: live audio's part in the show (what `ShowControl` calls between frames).

It reads the newest features of the live input, follows the recalled preset's `[audio]` mapping,
turns "every N beats" into intents, modulates the parameters the dream runs with, takes mapping
changes from OSC, and gives the HUD its meter line. Never waits for the audio thread.
"""

from __future__ import annotations

import logging
from typing import Any

from realtime.audio.hud import meter_line
from realtime.audio.live import LiveAudio
from realtime.audio.mapping import DEFAULT_MAPPING, AudioMapping, AudioReactor
from realtime.control.plane import Intent, ShowState
from realtime.errors import DreamcamError
from realtime.io.hud import MeterLine
from realtime.params import DreamParams

log = logging.getLogger(__name__)


class AudioShow:
    def __init__(
        self,
        live: LiveAudio | Any,  # anything with `latest`, `status`, `counts` and `close()`
        mappings: dict[str, AudioMapping] | None = None,  # preset path -> its [audio] table
        start: AudioMapping = DEFAULT_MAPPING,
    ):
        self.live = live
        self.mappings = mappings or {}
        self.reactor = AudioReactor(start)
        self._preset_index: int | None = None

    def intents(self, state: ShowState) -> list[Intent]:
        """Once per frame, before the other controls: the newest features, "every N beats" intents."""
        if state.preset_index != self._preset_index:
            self._preset_index = state.preset_index
            if 0 <= state.preset_index < len(state.presets):
                preset = state.presets[state.preset_index]
                self.reactor.set_mapping(self.mappings.get(preset.path, DEFAULT_MAPPING))
        return self.reactor.update(self.live.latest)

    def dream_params(self, params: DreamParams) -> DreamParams:
        return self.reactor.modulate(params)

    def change(self, key: str, value: object) -> None:
        """One key of the [audio] table, set live (from OSC)."""
        try:
            self.reactor.set_mapping(self.reactor.mapping.with_entry(key, value, "osc"))
        except DreamcamError as exc:
            log.warning("ignored audio mapping change: %s", exc)
            return
        log.info("audio mapping: %s", self.reactor.mapping.describe())

    def hud_lines(self) -> list[str]:
        lines: list[str] = [meter_line(self.live.latest, self.live.status)]
        c = self.live.counts
        if c.overflows or c.underflows or c.dropped or c.reopens:
            lines.append(
                f"audio overruns {c.overflows}  underruns {c.underflows}  dropped {c.dropped}"
                f"  reopened {c.reopens}"
            )
        return lines

    def close(self) -> None:
        self.live.close()


__all__ = ["AudioShow", "MeterLine"]
