"""Frames in and out: sources (camera, video, image, stream, synthetic), window, recorders, virtual cam."""
