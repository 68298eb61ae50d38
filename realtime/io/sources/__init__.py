"""Frame sources, one module per kind, all behind one contract (base.py: `Source`, `Frame`, the
mailbox and the pacer):

    camera.py     a webcam (index or device path) or a stream URL, reopened with back-off when lost
    video.py      a video file, looped; paced in real time or frame by frame
    image.py      a still image, handed out as a stream of new frames
    synthetic.py  the built-in moving scene (photos panning, then holding still)
    ndi.py        an NDI feed (the `ndi` extra)
    opener.py     `open_source`: what the user typed after --source, turned into one of the above

A new kind is a module here that builds on base.py, and one branch in opener.py.
"""
