"""The audit's hash half: duplicate pairs by kind, leaks across labels and splits, one row
per finding, dataset facts."""

import pandas as pd

from imgclf.data.audit import audit_rows, dataset_facts, hash_pairs, issue_counts, leak_rows


def images() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": ["a/1.png", "a/2.bmp", "a/3.png", "b/4.png", "b/5.png"],
            "label": ["a", "a", "a", "b", "b"],
            "split": ["train", "test", "train", "train", "val"],
            "width": ["40", "40", "30", "60", "20"],
            "height": ["20", "20", "30", "20", "20"],
            "pixel_hash": ["p1", "p1", "p3", "p4", "p5"],
            # 3 is 2 bits from 1; 4 is 4 bits from 1 and 6 from 3; 5 is far from all.
            "phash": [
                "0000000000000000",
                "0000000000000000",
                "0000000000000003",
                "00000000000000f0",
                "ffffffff00000000",
            ],
        }
    )


def test_pairs_by_kind_and_distance() -> None:
    pairs = hash_pairs(images(), max_distance=2)
    found = {(row.path, row.other): (row.issue, row.score) for row in pairs.itertuples()}
    assert found == {
        ("a/1.png", "a/2.bmp"): ("exact_duplicate", 0.0),
        ("a/1.png", "a/3.png"): ("near_duplicate", 2 / 64),
        ("a/2.bmp", "a/3.png"): ("near_duplicate", 2 / 64),
    }
    assert len(hash_pairs(images(), max_distance=4)) == 5  # b/4 joins a/1 and a/2
    assert hash_pairs(images(), max_distance=0)["issue"].tolist() == ["exact_duplicate"]


def test_leaks_across_labels_and_splits() -> None:
    pairs = hash_pairs(images(), max_distance=4)
    leaks = leak_rows(pairs, images())
    conflicting = leaks[leaks["issue"] == "conflicting_label"]
    assert sorted(conflicting["other"]) == ["b/4.png"] * 2
    crossing = leaks[leaks["issue"] == "split_leak"]
    assert {(row.path, row.other) for row in crossing.itertuples()} == {
        ("a/1.png", "a/2.bmp"),  # train / test
        ("a/2.bmp", "a/3.png"),
        ("a/2.bmp", "b/4.png"),
    }


def test_one_row_per_finding_sorted_with_counts() -> None:
    pairs = hash_pairs(images(), max_distance=2)
    # Datalab finds the exact pair again from the features, and one more pair.
    model = pd.DataFrame(
        {
            "path": ["a/1.png", "a/3.png", "b/5.png"],
            "other": ["a/2.bmp", "b/5.png", ""],
            "issue": ["near_duplicate", "near_duplicate", "label_error"],
            "score": [0.01, 0.2, 0.05],
            "suggested": ["", "", "a"],
        }
    )
    rows = audit_rows([pairs, model, pairs])
    assert rows.columns.tolist() == ["path", "issue", "score", "other", "suggested"]
    assert rows["issue"].tolist() == ["exact_duplicate", "label_error", *["near_duplicate"] * 3]
    assert rows.loc[1, "suggested"] == "a" and rows.loc[0, "other"] == "a/2.bmp"
    assert rows["score"].tolist()[2:] == sorted(rows["score"].tolist()[2:])
    counts = issue_counts(rows, ["exact_duplicate", "near_duplicate", "outlier"])
    assert counts == {"exact_duplicate": 1, "near_duplicate": 3, "outlier": 0}


def test_no_finding_gives_an_empty_table() -> None:
    pairs = hash_pairs(images().iloc[[0, 2, 4]], max_distance=0)
    assert pairs.empty
    rows = audit_rows([pairs, leak_rows(pairs, images())])
    assert rows.empty and rows.columns.tolist() == ["path", "issue", "score", "other", "suggested"]


def test_dataset_facts() -> None:
    facts = dataset_facts(images())
    assert facts["classes"] == 2 and facts["imbalance_ratio"] == 1.5
    assert (facts["width_min"], facts["width_median"], facts["width_max"]) == (20, 40, 60)
    assert (facts["aspect_min"], facts["aspect_max"]) == (1.0, 3.0)
