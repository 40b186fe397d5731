"""Pairs files: LFW's pairs.txt as published and a plain CSV; every malformed file is one line
naming the line, before anything is embedded."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.errors import UserError
from gender_cls.verify.pairs import read_pairs
from tests.helpers import IDENTITIES, lfw_pairs_file, needs, write_image


@pytest.fixture
def lfw(tmp_path):
    """Four people with two images each, named as LFW names them."""
    images = tmp_path / "lfw"
    for person in ("Ann_A", "Bob_B", "Cy_C", "Di_D"):
        for number in (1, 2):
            write_image(images / person / f"{person}_{number:04d}.jpg", np.zeros((8, 8, 3), "u1"))
    return images


GOOD = "2\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t2\nCy_C\t2\t1\nCy_C\t1\tDi_D\t1\n"


def test_lfw_lines_give_pairs_their_kind_and_fold(lfw, tmp_path):
    (tmp_path / "pairs.txt").write_text(GOOD)
    pairs = read_pairs(tmp_path / "pairs.txt", lfw)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[1].a == lfw / "Ann_A" / "Ann_A_0001.jpg"
    assert pairs[1].b == lfw / "Bob_B" / "Bob_B_0002.jpg"


def test_a_csv_takes_its_folds_from_a_column_or_from_row_order(lfw, tmp_path):
    rows = ["Ann_A/Ann_A_0001.jpg,Ann_A/Ann_A_0002.jpg,1", "Ann_A/Ann_A_0001.jpg,Bob_B/Bob_B_0001.jpg,0",
            "Cy_C/Cy_C_0001.jpg,Cy_C/Cy_C_0002.jpg,true", "Cy_C/Cy_C_0001.jpg,Di_D/Di_D_0001.jpg,false"]  # fmt: skip
    (tmp_path / "p.csv").write_text("path_a,path_b,same\n" + "\n".join(rows) + "\n")
    pairs = read_pairs(tmp_path / "p.csv", lfw, folds=2)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    with_column = [f"{row},{fold}" for row, fold in zip(rows, (1, 0, 1, 0), strict=True)]
    (tmp_path / "f.csv").write_text("path_a,path_b,same,fold\n" + "\n".join(with_column) + "\n")
    assert [p.fold for p in read_pairs(tmp_path / "f.csv", lfw)] == [1, 0, 1, 0]


@pytest.mark.parametrize("name, text, message", [
    ("pairs.txt", "2\t1\nAnn_A\t1\nAnn_A\t1\tBob_B\t2\nCy_C\t2\t1\nCy_C\t1\tDi_D\t1\n",
     "pairs.txt line 2: expected name<TAB>i<TAB>j (same person) or name1<TAB>i<TAB>name2"),
    ("pairs.txt", "2\t1\n../Ann_A\t1\t2\nAnn_A\t1\tBob_B\t2\nCy_C\t2\t1\nCy_C\t1\tDi_D\t1\n",
     "pairs.txt line 2: '../Ann_A' is not a person's name"),
    ("pairs.txt", "2\t1\nAnn_A\t1\t3\nAnn_A\t1\tBob_B\t2\nCy_C\t2\t1\nCy_C\t1\tDi_D\t1\n",
     "Ann_A/Ann_A_0003.jpg: image not found"),
    ("pairs.txt", "2\t2\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t2\n",
     "the first line promises 2 fold(s) of 2 matched and 2 mismatched pairs (8 lines), but 2"),
    ("pairs.txt", "ten\t300\n", "line 1: expected the number of folds and of pairs per fold"),
    ("pairs.txt", "1\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t2\n", "1 fold; the protocol chooses"),
    ("p.csv", "path_a,path_b,same,fold\nAnn_A/Ann_A_0001.jpg,Ann_A/Ann_A_0002.jpg,1,0\n"
     "Ann_A/Ann_A_0001.jpg,Bob_B/Bob_B_0001.jpg,0,2\n", "fold 1 has no pairs"),
    ("p.csv", "path_a,path_b,same\n/etc/passwd,Ann_A/Ann_A_0002.jpg,1\n",
     "line 2: '/etc/passwd' must be a path inside --images"),
    ("p.csv", "a,b\n1,2\n", "a pairs CSV needs a header path_a,path_b,same"),
])  # fmt: skip
def test_a_malformed_pairs_file_is_one_line_naming_where(lfw, tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError) as error:
        read_pairs(tmp_path / name, lfw)
    assert message in str(error.value) and "\n" not in str(error.value)


@needs(IDENTITIES)
def test_an_lfw_pairs_file_built_from_the_identities_reads_back(tmp_path):
    path = lfw_pairs_file(tmp_path / "pairs.txt", IDENTITIES, folds=3, per_fold=5)
    pairs = read_pairs(path, IDENTITIES)
    assert len(pairs) == 30 and sum(p.same for p in pairs) == 15
    assert sorted({p.fold for p in pairs}) == [0, 1, 2]
    people = [{p.a.parent.name for p in pairs if p.fold == f} for f in range(3)]
    assert not (people[0] & people[1]) and not (people[1] & people[2])  # each fold its people
