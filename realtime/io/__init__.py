"""Frames in and out: sources (one module per kind in `sources/`), the window and its keys, recorders,
the virtual camera and the NDI/Spout/Syphon links."""
