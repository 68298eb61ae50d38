"""The control plane every controller drives, below all of them: intents (`Action`, `Command`), the
show's state (`ShowState`) and `apply_action`, the one place an intent becomes new, validated
`DreamParams` (plane.py); the warning limit every controller's bad input goes through
(ratelimit.py); and `RateMeter`, the events-per-second count the loop's figures and the show's OSC
feedback both read (rates.py).

Keys (realtime/io/display.py), OSC, MIDI, the web page and playlists (realtime/show/) and audio
(realtime/audio/) import from here; nothing here imports any of them.
"""
