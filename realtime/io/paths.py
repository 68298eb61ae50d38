"""File names the user typed: checked before anything is read or written.

Three promises live here. A name that is not valid UTF-8 is refused with one line (OpenCV's
VideoCapture crashes the process on one). An output never replaces a file the user did not name
for overwriting (`--overwrite`). And an output is never one of the inputs, however it is spelt
(`../`, a symlink, a hard link): a render onto its own footage would destroy it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from realtime.errors import ConfigError, SourceError
from realtime.io.videofile import VIDEO_EXTS
from realtime.untrusted import printable


def cache_dir() -> Path:
    """dreamcam's own cache: $DREAMCAM_CACHE, else $XDG_CACHE_HOME/dreamcam, else ~/.cache/dreamcam."""
    if os.environ.get("DREAMCAM_CACHE"):
        return Path(os.environ["DREAMCAM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dreamcam"


def check_name_encoding(path: str, what: str = "file") -> None:
    """A one-line SourceError for a name that is not valid UTF-8 (bytes the OS gave us as surrogates)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError(
            f"{what} name '{printable(path)}' is not valid UTF-8; rename the file (e.g. with only "
            "letters, digits and -_.)"
        ) from None


def check_output_path(
    path: str,
    extensions: tuple[str, ...] = VIDEO_EXTS,
    *,
    inputs: Iterable[str] = (),
    overwrite: bool = False,
) -> None:
    """Fail before the work starts if the output file could not, or must not, be written."""
    check_name_encoding(path, "output")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"output folder '{folder}' does not exist; create it or choose another path")
    if os.path.splitext(path)[1].lower() not in extensions:
        raise ConfigError(f"cannot write '{path}': use one of {', '.join(extensions)}")
    if os.path.isdir(path):
        raise ConfigError(f"output '{path}' is a folder; name a file (e.g. {os.path.join(path, 'out.mp4')})")
    for source in inputs:
        if _same_file(source, path):
            raise ConfigError(f"output '{path}' is the input '{source}'; write the result to another file")
    if os.path.lexists(path) and not overwrite:
        raise ConfigError(f"output '{path}' exists; choose another name, or pass --overwrite to replace it")
    if not os.access(folder, os.W_OK):
        why = "is read-only" if _read_only_mount(folder) else "is not writable for this user"
        raise ConfigError(f"output folder '{folder}' {why}; choose another path")


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):  # ../ and symlinks, existing or not
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def _read_only_mount(folder: str) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
