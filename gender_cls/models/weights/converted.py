"""Foreign weights converted once and kept in Keras' cache (`~/.keras/models`, or $KERAS_HOME):
the same load-or-convert step for every foreign format."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import keras

from gender_cls.artifacts.disk_space import ensure_room_for
from gender_cls.atomic import replacing
from gender_cls.errors import DiskFull

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where Keras keeps downloaded weights, and where the converted ones go beside them."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def load_or_convert(model: keras.Model, cached: Path, convert: Callable[[], None]) -> None:
    """Load `cached` into `model`; where it is missing or unreadable, `convert()` fills the model
    from the foreign file and the result is cached (atomically; a cache that cannot be written
    only warns)."""
    if cached.is_file():
        try:
            model.load_weights(cached)
            return
        except Exception as error:  # h5py and Keras raise many types for a damaged file
            log.warning("%s: unreadable (%s); converting the weights again", cached, error)
    convert()
    try:
        ensure_room_for(model, cached, with_optimizer=False)
        with replacing(cached) as temp:
            model.save_weights(temp)
    except (OSError, DiskFull) as error:
        log.warning("could not cache the converted weights at %s (%s)", cached, error)
