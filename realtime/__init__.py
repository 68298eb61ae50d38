"""dreamcam's live program: sources, dream kernel, warm start, backends, pipeline, display, CLI."""

__version__ = "0.1.0"
