"""The Verifier: gallery embeddings cached per image."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_gallery_embeddings_are_cached_per_image(verifier, tmp_path, monkeypatch, caplog):
    import shutil

    from gender_cls.verify import verifier as verification

    run, card, data = verifier
    gallery = tmp_path / "gallery"
    for person in card["held_out_people"]:
        shutil.copytree(data / person, gallery / person)
    embedder, _ = verification.load_verifier(run)
    fresh = verification.gallery_embeddings(embedder, gallery, 48, True)
    embedded = []
    real_embed = verification.embed
    monkeypatch.setattr(verification, "embed",
                        lambda model, paths, *args: embedded.append(len(paths)) or
                        real_embed(model, paths, *args))  # fmt: skip
    cache = verification.gallery_cache_file(run, gallery)

    def cached():
        embedded.clear()
        vectors = verification.gallery_embeddings(embedder, gallery, 48, True, cache)
        assert vectors.keys() == fresh.keys()
        return vectors

    cached()
    assert embedded == [sum(len(v) for v in fresh.values())] and cache.is_file()
    again = cached()
    assert embedded == [] and all(np.allclose(again[n], fresh[n], atol=1e-5) for n in fresh)
    person = sorted(fresh)[0]
    shutil.copy(next((gallery / person).iterdir()), gallery / person / "new.png")
    assert len(cached()[person]) == len(fresh[person]) + 1 and embedded == [1]

    for damage in (cache.read_bytes()[:100], b""):  # truncated, empty: dropped and rebuilt
        cache.write_bytes(damage)
        assert cached().keys() == fresh.keys() and embedded == [len(list(gallery.rglob("*.png")))]
        assert np.load(cache)["vectors"].shape[0] == embedded[0]
    assert caplog.text.count("damaged gallery cache") == 2

    shutil.rmtree(cache.parent)
    cache.parent.write_text("in the way")  # an unwritable cache warns and still answers
    assert cached().keys() == again.keys() and "could not cache" in caplog.text


@pytest.mark.parametrize("field, value", [
    ("image_size", 50000), ("image_size", "\u0664\u0668"), ("threshold", float("nan")),
    ("threshold", 3), ("threshold", -1.5), ("aggregate", "median"), ("options", []), ("face_crop", {"detector": "x"}),
])  # fmt: skip
def test_a_hostile_verifier_card_is_one_line_naming_the_field(tmp_path, field, value):
    """Checked before the embedder is loaded (none is there)."""
    import json

    from gender_cls.errors import UserError
    from gender_cls.verify.verifier import CARD_FILE, load_verifier

    card = {"image_size": 48, "threshold": 0.5, "aggregate": "max", "options": {}}
    (tmp_path / CARD_FILE).write_text(json.dumps({**card, field: value}))
    with pytest.raises(UserError, match=f"^{tmp_path / CARD_FILE}: field '{field}'"):
        load_verifier(tmp_path)
