"""Presets: a look (every `DreamParams` field) as a small TOML file, and folders of them.

Reading uses the standard library's `tomllib`. Writing needs no dependency: a preset is a flat
table of strings and numbers, which a dozen lines write correctly (see `dumps`).
The schema is documented in docs/PRESETS.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import tomllib
from importlib import resources

from realtime.audio.mapping import AudioMapping
from realtime.control.plane import Preset
from realtime.errors import ConfigError, DreamcamError
from realtime.io.sinks import unique_path
from realtime.params import DreamParams
from realtime.untrusted import open_regular, printable

log = logging.getLogger(__name__)

FIELDS = tuple(f.name for f in dataclasses.fields(DreamParams))
META_KEYS = ("description", "audio")  # allowed besides the fields; [audio]: realtime.audio.mapping
MAX_CONFIG_BYTES = 4 * 2**20  # a preset is a few hundred bytes; a playlist or MIDI map a few kB
_ORDER_PREFIX = re.compile(r"^\d+[-_ ]")  # "2-eyes.toml" sorts second and is called "eyes"


def bundled_dir() -> str:
    """The folder of looks that ship with dreamcam (package data)."""
    return str(resources.files("realtime.show") / "looks")


def preset_name(path: str) -> str:
    """The look's name from its file: printable (a name that is not UTF-8 gets \\xNN escapes, so the
    HUD can draw it and OSC feedback can send it)."""
    return printable(_ORDER_PREFIX.sub("", os.path.splitext(os.path.basename(path))[0]))


def read_toml(path: str, what: str) -> dict:
    """A TOML file as a dict; a missing, huge or broken file is one line naming it and the fix.

    Every config file (preset, playlist, MIDI map) is read here, at most MAX_CONFIG_BYTES of it
    (`--preset /dev/zero` would otherwise read until the kernel kills the show), and a UTF-8 byte
    order mark, which Windows editors write, is skipped. Only a regular file is read, opened without
    blocking: a FIFO named like a preset would hang the show (and SIGTERM could not end it)."""
    try:
        with open_regular(path, what) as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{what} '{path}' is larger than {MAX_CONFIG_BYTES // 2**20} MB; is it really a {what}?"
            )
        return tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist; check the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} '{path}': {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} '{path}' is not valid TOML ({exc}); fix the syntax") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition: Latin-1 text, or not text at all
        raise ConfigError(
            f"{what} '{path}' is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def params_from_dict(
    data: dict, origin: str, base: DreamParams | None = None, check_network: bool = True
) -> DreamParams:
    """Validated DreamParams from a preset table; missing fields keep `base` (default: the defaults).
    `check_network=False` skips the model and layer check, the one part that needs torch."""
    unknown = [key for key in data if key not in FIELDS and key not in META_KEYS]
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key '{unknown[0]}'; remove it or use one of: {', '.join(FIELDS)}"
        )
    values = {key: value for key, value in data.items() if key in FIELDS}
    for key, value in values.items():
        if isinstance(value, dict | list):
            raise ConfigError(f"{origin}: '{key}' must be a single value, got {value!r}; fix '{key}'")
    try:
        params = (base or DreamParams()).replace(**values)
    except DreamcamError as exc:
        key = next((k for k in values if str(exc).startswith(k) or f"'{values[k]}'" in str(exc)), None)
        fix = f"; fix '{key}'" if key else ""
        raise ConfigError(f"{origin}: {exc}{fix}") from None
    if not check_network:
        return params
    from models.registry import get_spec  # torch: imported where a look is checked, not to list one
    from realtime.dream.objectives import parse_objective

    try:  # the model and layer exist (checked without loading any weights)
        spec = get_spec(params.model)
    except DreamcamError as exc:
        raise ConfigError(f"{origin}: {exc}; fix 'model'") from None
    try:
        parse_objective(params.layer, spec)
    except DreamcamError as exc:
        raise ConfigError(f"{origin}: {exc}; fix 'layer'") from None
    return params


def load_preset(path: str, check_network: bool = True) -> DreamParams:
    """The look stored in a preset file (its [audio] table is checked too: see `load_audio_mapping`).
    `check_network=False`: its model and layer go unchecked (`dreamcam looks` lists without torch)."""
    data = read_toml(path, "preset")
    if "audio" in data:
        AudioMapping.parse(data["audio"], f"preset '{path}'")
    return params_from_dict(data, f"preset '{path}'", check_network=check_network)


def load_audio_mapping(path: str) -> AudioMapping | None:
    """The preset's [audio] table (None: it has none, and gets the default mapping)."""
    data = read_toml(path, "preset")
    return AudioMapping.parse(data["audio"], f"preset '{path}'") if "audio" in data else None


def bundled_looks() -> list[tuple[str, str, str]]:
    """(name, description, path) of every look that ships with dreamcam, in key order."""
    folder = bundled_dir()
    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".toml"))
    return [(preset_name(p), str(read_toml(p, "preset").get("description", "")), p) for p in paths]


def look_path(name_or_file: str) -> str:
    """`--preset NAME|FILE`: a preset file, or the name of a bundled look ("eyes"); one line if neither."""
    if os.path.isfile(name_or_file) or name_or_file.endswith(".toml") or os.sep in name_or_file:
        return name_or_file  # a file: a missing one is load_preset's "does not exist; check the path"
    for name, _, path in bundled_looks():
        if name == name_or_file:
            return path
    names = ", ".join(name for name, _, _ in bundled_looks())
    raise ConfigError(
        f"--preset '{name_or_file}' is neither a preset file nor a bundled look; bundled: {names} "
        "(see 'dreamcam looks')"
    )


def load_look(name_or_file: str) -> DreamParams:
    """The look of `--preset NAME|FILE`."""
    return load_preset(look_path(name_or_file))


def dumps(params: DreamParams, description: str = "", audio: dict | None = None) -> str:
    """A preset file's text: every field, in the dataclass's order, then its [audio] table if any."""
    lines = [f"description = {json.dumps(description)}"] if description else []
    for name in FIELDS:
        value = getattr(params, name)
        if value is None:
            continue  # layer None: the model's default layer (TOML has no null)
        lines.append(f"{name} = {_toml_value(value)}")
    if audio:
        lines += ["", "[audio]"]
        for key, entry in audio.items():
            inline = ", ".join(f"{k} = {_toml_value(v)}" for k, v in entry.items())
            lines.append(f"{key} = {{ {inline} }}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot store {value} in a preset")
        return repr(value)  # shortest round-tripping form, valid TOML ("0.03", "1e-05")
    # JSON's escaped double-quoted string is a valid TOML basic string
    return json.dumps(str(value), ensure_ascii=False)


def save_preset(params: DreamParams, folder: str, stem: str = "preset", audio: dict | None = None) -> str:
    """Write the look (and its `[audio]` table) as a new file in `folder` (never overwrites); its path."""
    path = unique_path(folder, stem, ".toml")
    with open(path, "x", encoding="utf-8") as f:  # "x": refuse, rather than replace, an existing file
        f.write(dumps(params, "saved from dreamcam", audio))
    log.info("preset saved: %s", path)
    return path


def with_preset(presets: list[Preset], preset: Preset) -> list[Preset]:
    """`presets` (a folder's, sorted by file) with one just saved in its place: no file is read
    again (re-reading the folder on every save froze the show at ~900 presets)."""
    return sorted([*presets, preset], key=lambda p: p.path)


def load_folder(folder: str) -> list[Preset]:
    """Every preset in `folder`, sorted by file name (keys 1-9 recall the first nine)."""
    if not os.path.isdir(folder):
        raise ConfigError(f"preset folder '{folder}' does not exist; create it or choose another")
    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".toml"))
    return [Preset(preset_name(path), path, load_preset(path)) for path in paths]
