"""Show control: OSC, MIDI, the web remote, presets and looks, playlists, attract mode, and the plan
of a show's controls and outputs; every controller drives the show through realtime/control/."""
