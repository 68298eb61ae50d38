"""Show control: keys, OSC, MIDI, presets and looks, playlists, attract mode; all of them edit DreamParams."""
