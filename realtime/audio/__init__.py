"""Audio-reactive dreaming: features of live or recorded sound (loudness, onsets, beat, tempo), and
the mapping from those features to `DreamParams` that a look's `[audio]` table describes. Audio is a
controller: it drives the show through realtime/control/, like keys, OSC and MIDI."""
