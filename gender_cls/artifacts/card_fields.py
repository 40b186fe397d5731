"""What each field of a model card may hold, checked field by field when a card is read.

A card may come from anywhere (a download, a hand edit, a hostile upload): its names reach file
names and pages, its numbers size allocations and decide answers. Each rule here takes the value as
JSON gave it and returns it or raises a UserError naming the field; nothing is guessed at (only a
whole number written as ASCII digits in quotes is taken), so a digit of another script, a word
for a number or NaN is refused. JSON Schema libraries
would check types, but not "a plain file name", "an existing config section" or "unique", and the
card's own dataclass stays the single list of fields (a test checks that CARD_FIELDS covers it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gender_cls.config import INPUT_SCALES, RESIZE_CHOICES, FaceCrop, RunConfig
from gender_cls.errors import UserError

MAX_CARD_BYTES = 1 << 20  # a card is a few KB; a larger one is refused before it is read
MAX_IMAGE_SIZE = 2048  # a 2048 px batch of 32 is 1.6 GB of float32 already
MAX_CLASSES = 10_000
MAX_DEPTH = 8  # nesting of the free-form sections (validation, data, versions)
ASCII_DIGITS = re.compile(r"[0-9]{1,9}")
PLAIN_NAME = re.compile(r"[^/\\\x00-\x1f\x7f]{1,100}")  # a class name, an export's file name


def plain(name) -> bool:
    """A string fit for one path component: PLAIN_NAME, and not "." or ".."."""
    return isinstance(name, str) and bool(PLAIN_NAME.fullmatch(name)) and name not in (".", "..")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Rule:
    """A field's type and range: `check(value)` returns it or says in a phrase what is wrong."""

    kind: str  # "whole", "number", "text", "choice", "names", "mapping", "exports", "section"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    read: Callable[[Any, str], Any] | None = None  # "section": the parser of a nested object

    def check(self, name: str, value, source: str):
        if value is None and self.optional:
            return None
        if self.kind == "whole" and isinstance(value, str) and ASCII_DIGITS.fullmatch(value):
            value = int(value)  # "64" written by hand; a digit of another script is refused
        problem = getattr(self, f"_{self.kind}")(value)
        if problem:
            raise UserError(f"{source}: field {name!r} {problem}, not {_shown(value)}")
        return self.read(value, f"{source}: field {name!r}") if self.read else value

    def _whole(self, value) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number (JSON digits)"
        return self._range(value)

    def _number(self, value) -> str | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "must be a number"
        if not math.isfinite(value):
            return "must be a finite number"
        return self._range(value)

    def _range(self, value) -> str | None:
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            return f"must lie in [{self.low:g}, {self.high:g}]"
        return None

    def _text(self, value) -> str | None:
        if not isinstance(value, str) or len(value) > 1000:
            return "must be a string of at most 1000 characters"
        return None

    def _choice(self, value) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(self.choices)}"

    def _names(self, value) -> str | None:
        if not isinstance(value, list) or not 2 <= len(value) <= MAX_CLASSES:
            return f"must be a list of 2 to {MAX_CLASSES:,} names"
        if not all(plain(name) for name in value):
            return (
                "must hold plain names (1-100 characters, no slash, backslash or control character)"
            )
        if len(set(value)) != len(value):
            return "must not name a class twice"
        return None

    def _mapping(self, value) -> str | None:
        if not isinstance(value, dict):
            return "must be a JSON object"
        return None if _depth(value) <= MAX_DEPTH else f"must nest at most {MAX_DEPTH} levels"

    def _exports(self, value) -> str | None:
        problem = self._mapping(value)
        if problem:
            return problem
        if not all(isinstance(r, dict) and plain(r.get("file")) for r in value.values()):
            return 'must give each export its file beside the model ({"file": "model.tflite"})'
        return None

    def _section(self, value) -> str | None:
        return None if isinstance(value, dict) else "must be a JSON object"


def _depth(value, level: int = 1) -> int:
    """How deep JSON containers nest (stops counting past MAX_DEPTH)."""
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    if level > MAX_DEPTH:
        return level
    return max((_depth(child, level + 1) for child in children if isinstance(child, dict | list)),
               default=level)  # fmt: skip


def _run_config(raw, source: str) -> RunConfig:
    try:
        return RunConfig.from_dict(raw)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None


def read_face_crop(raw, source: str) -> FaceCrop:
    """A card's face_crop object: FaceCrop.read, with the margin checked as a number."""
    margin = raw.get("margin", FaceCrop.margin)
    if not (isinstance(margin, int | float) and not isinstance(margin, bool) and 0 <= margin <= 1):
        raise UserError(
            f"{source}: face_crop margin must be a number in [0, 1], not {_shown(margin)}"
        )
    return FaceCrop.read(raw, source)


CARD_FIELDS: dict[str, Rule] = {
    "class_names": Rule("names"),
    "image_size": Rule("whole", 8, MAX_IMAGE_SIZE),
    "backbone": Rule("text"),
    "input_scale": Rule("choice", choices=INPUT_SCALES),
    "resize": Rule("choice", choices=RESIZE_CHOICES),
    "threshold": Rule("number", 0, 1, optional=True),
    "threshold_source": Rule("text"),
    "validation": Rule("mapping"),
    "epochs_trained": Rule("whole", 0, 1_000_000, optional=True),
    "phase2_start_epoch": Rule("whole", 0, 1_000_000, optional=True),
    "data": Rule("mapping"),
    "config": Rule("section", optional=True, read=_run_config),
    "versions": Rule("mapping"),
    "created": Rule("text"),
    "exports": Rule("exports"),
    "face_crop": Rule("section", optional=True, read=read_face_crop),
    "temperature": Rule("number", 0.01, 100),  # calibration fits it in [0.05, 20]
}


def check_fields(raw: dict, rules: dict[str, Rule], source: str) -> dict:
    """The fields of `raw` that `rules` name, each checked (absent ones are left to defaults)."""
    return {name: rule.check(name, raw[name], source) for name, rule in rules.items()
            if name in raw}  # fmt: skip
