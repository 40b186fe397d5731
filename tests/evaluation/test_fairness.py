"""Fairness by group: the table against a hand computation, group sources."""

from __future__ import annotations

import pytest

from gender_cls.errors import UserError
from gender_cls.evaluation.fairness import (
    UNLISTED,
    csv_groups,
    format_report,
    group_table,
    utkface_groups,
)

CLASSES = ["female", "male"]


def test_group_table_matches_a_hand_computation():
    y_true = [0, 0, 1, 1, 0, 1, 1, 0]
    y_pred = [0, 1, 1, 1, 0, 0, 1, 0]
    groups = {"age": ["young", "young", "young", "young", "old", "old", "old", UNLISTED]}
    table = group_table(y_true, y_pred, CLASSES, groups)["age"]
    young, old = table["groups"]["young"], table["groups"]["old"]
    # young: 0->0 ok, 0->1 wrong, 1->1 ok, 1->1 ok: accuracy 3/4, female recall 1/2, male 2/2
    assert young == {"count": 4, "accuracy": 0.75, "recall": {"female": 0.5, "male": 1.0}}
    # old: 0->0 ok, 1->0 wrong, 1->1 ok: accuracy 2/3, female 1/1, male 1/2
    assert old["count"] == 3 and old["accuracy"] == pytest.approx(2 / 3)
    assert old["recall"] == {"female": 1.0, "male": 0.5}
    gaps = table["largest_gap"]  # the unlisted image (a correct female) is left out of the gaps
    assert gaps["accuracy"] == {"gap": pytest.approx(0.75 - 2 / 3), "best": "young",
                                "worst": "old"}  # fmt: skip
    assert gaps["recall_female"]["gap"] == 0.5 and gaps["recall_male"]["worst"] == "old"
    text = format_report({"age": table}, CLASSES)
    assert "largest accuracy gap: 0.0833 (young vs old)" in text


def test_utkface_names_give_age_bands_and_races():
    groups = utkface_groups(["x/25_0_1_2017.jpg", "61_1_3_x.jpg", "44_1_0_y.jpg", "bad.jpg"])
    assert groups == {"age": ["18-29", "60+", "30-44", UNLISTED],
                      "race": ["Black", "Indian", "White", UNLISTED]}  # fmt: skip


def test_csv_groups_match_by_path_or_file_name(tmp_path):
    a, b = tmp_path / "imgs" / "a.jpg", tmp_path / "imgs" / "b.jpg"
    groups_csv = tmp_path / "groups.csv"
    groups_csv.write_text(f"path,skin,age\n{a},dark,old\nb.jpg,light,young\n")
    found = csv_groups(groups_csv, [str(a), str(b), str(tmp_path / "c.jpg")])
    assert found == {"skin": ["dark", "light", UNLISTED], "age": ["old", "young", UNLISTED]}
    groups_csv.write_text("path,skin\nnobody.jpg,dark\n")
    with pytest.raises(UserError, match="none of its rows names an evaluated image"):
        csv_groups(groups_csv, [str(a)])
