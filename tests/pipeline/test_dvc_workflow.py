"""DVC off the demo path, on copies of the session's built project: the run-cache restores
stages whose params go back, dropped ensemble members leave nothing behind, a changed image
reruns what it affects (and a junk file nothing), curation decisions reach every stage, plots
render, and `dvc exp show` stays narrow. Queued experiments running their own code:
test_experiments.py."""

import csv
import io
import json
import re
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from imgclf.data.hdf5io import load_predictions
from support.project import Project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(built_project: Project, tmp_path: Path) -> Project:
    return Project(tmp_path / "project", template=built_project)


def params(project: Project) -> dict:
    return yaml.safe_load((project.root / "params.yaml").read_text(encoding="utf-8"))


def test_seeds_come_and_go_cleanly_and_the_run_cache_restores_what_goes_back(
    project: Project,
) -> None:
    """A new seed trains alone; dropping it leaves nothing behind (workspace, lock, status);
    adding it back and flipping params back restore from the run-cache, not recompute."""
    original = params(project)
    project.update_params("cnn", seeds=[0, 7])
    assert sorted(project.repro()) == [
        "cnn@7",
        "ensemble",
        "evaluate",
        "export",
        "predict_cnn@7",
        "report",
        "score_export",
    ]
    seed7 = [
        "models/cnn/seed7.keras",
        "data/predictions/cnn/seed7.h5",
        "plots/training/cnn/seed7.csv",
        "metrics/evaluation/models/cnn/seed7.json",
        "plots/confusion/cnn/seed7.csv",
    ]
    assert all((project.root / name).exists() for name in seed7)

    project.update_params("cnn", seeds=[0])
    project.update_params("logreg", C=[1.0e-6])
    project.update_params("data", max_rejected=0.5)
    assert {"index", "logreg", "ensemble"} <= set(project.repro())
    assert [name for name in seed7 if (project.root / name).exists()] == []
    assert "up to date" in project.dvc("status").stdout
    # A clone (which never had them) sees the same folders: the lock has no trace of them.
    lock = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    for stage in ("ensemble", "evaluate", "export", "score_export", "report"):
        assert "seed7" not in json.dumps(lock[stage])

    project.write_params({**original, "cnn": {**original["cnn"], "seeds": [0, 7]}})
    result = project.dvc("repro")
    restored = re.findall(r"Stage '([^']+)' is cached - skipping run", result.stdout)
    ran = re.findall(r"Running stage '([^']+)'", result.stdout)
    # Training, the model on features and the index: back from the run-cache, not recomputed.
    assert {"index", "logreg", "cnn@7", "predict_cnn@7"} <= set(restored), result.stdout
    assert not {"index", "logreg", "cnn@7", "predict_cnn@7"} & set(ran)
    assert all((project.root / name).exists() for name in seed7)
    assert "up to date" in project.dvc("status").stdout


def test_only_index_reads_the_image_folder(project: Project) -> None:
    """A junk file changes nothing downstream; an edited, removed or added image reruns the
    stages it affects; no other stage depends on the folder."""
    spec = yaml.safe_load((project.root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    readers = [
        name
        for name, stage in spec.items()
        if "${data.source}" in stage.get("do", stage).get("deps", [])
    ]
    assert readers == ["index"]
    (project.root / "data/images/cat/.DS_Store").write_bytes(b"junk")
    (project.root / "data/images/cat/Thumbs.db").write_bytes(b"junk")
    assert project.repro() == []
    (project.root / "data/images/cat/notes.txt").write_text("not an image")
    # Rejected and listed (the report says so): the same manifest, so nothing else reruns.
    assert sorted(project.repro()) == ["index", "report"]
    # An edited image: index notices, and the new hash reaches the splits (and so the packs,
    # which check it as they read; running only that far keeps the test short).
    victim, other, third = sorted((project.root / "data/images/dog").iterdir())[:3]
    victim.write_bytes(other.read_bytes())
    assert project.repro("split") == ["index", "split"]
    assert "pack@" in project.dvc("status").stdout
    # A removed image and an added one: the same.
    third.unlink()
    assert project.repro("split") == ["index", "split"]
    (project.root / "data/images/fox/new.jpg").write_bytes(other.read_bytes())
    assert project.repro("split") == ["index", "split"]
    manifest = (project.root / "data/interim/manifest.csv").read_text(encoding="utf-8")
    assert "fox/new.jpg" in manifest and third.name not in manifest


def test_curation_rows_reach_every_stage_and_rerun_from_split(project: Project) -> None:
    """An exclude and a relabel in data/curation.csv rerun split and what follows it (never
    index: the folder is not read again); the excluded image is in no pack, prediction or
    audit row, the relabelled one has its new label in its pack and every model's
    predictions, and every other image keeps its split."""
    before = pd.read_csv(project.root / "data/interim/splits.csv").set_index("path")
    excluded = before.index[before["split"] == "train"][0]
    relabelled = before.index[before["split"] == "test"][0]
    new_label = sorted(set(before["label"]) - {before.loc[relabelled, "label"]})[0]
    with open(project.root / "data/curation.csv", "a", encoding="utf-8") as curation:
        curation.write(f"{excluded},exclude,,\n{relabelled},relabel,{new_label},a test\n")
    ran = project.repro()
    assert "index" not in ran and "split" in ran and "report" in ran

    after = pd.read_csv(project.root / "data/interim/splits.csv").set_index("path")
    assert excluded not in after.index and after.loc[relabelled, "label"] == new_label
    kept = before.drop(index=[excluded, relabelled])
    assert after.loc[kept.index, "split"].equals(kept["split"])
    assert json.loads((project.root / "metrics/split.json").read_text())["excluded"] == 1

    labels_in_packs = {}
    for split in ("train", "val", "test"):
        with h5py.File(project.root / f"data/processed/{split}.h5", "r") as pack:
            names = list(pack["label_names"].asstr()[()])
            paths = list(pack["paths"].asstr()[()])
            for path, label in zip(paths, pack["labels"][()], strict=True):
                labels_in_packs[path] = names[label]
    assert excluded not in labels_in_packs and labels_in_packs[relabelled] == new_label
    predictions = sorted((project.root / "data/predictions").rglob("*.h5"))
    assert len(predictions) >= 4  # every model's, the ensemble's and the export's
    for file in predictions:
        splits, names = load_predictions(file)
        test = splits["test"]
        assert excluded not in list(test.paths), file
        row = list(test.paths).index(relabelled)
        assert names[test.labels[row]] == new_label, file
    audited = pd.read_csv(project.root / "data/interim/audit.csv")
    assert excluded not in set(audited["path"]) | set(audited["other"].dropna())


def test_plots_render_train_and_val_on_one_chart(project: Project) -> None:
    shown = json.loads(project.dvc("plots", "show", "--json").stdout)
    assert "errors" not in shown, shown.get("errors")
    curves = shown["data"]["plots/training/cnn/seed0.csv"][0]["content"]
    fields = curves["encoding"]["strokeDash"]["scale"]["domain"]
    assert sorted(fields) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert "plots/confusion/cnn/seed0.csv" in shown["data"]


def test_exp_show_has_one_headline_row_and_imgclf_experiments_fits_a_screen(
    project: Project,
) -> None:
    """`dvc exp show`'s metrics are the headline file alone (the stage summaries are outputs,
    the provenance records stage metrics only for DVC's run-cache); `imgclf experiments`
    narrows the table to the headline with no dependency hash and no unchanged param."""
    table = json.loads(project.dvc("exp", "show", "--json").stdout)
    metrics = table[0]["data"]["metrics"]
    assert sorted(name for name in metrics if "provenance" not in name) == [
        "metrics/evaluation/headline.json"
    ]
    headline = metrics["metrics/evaluation/headline.json"]["data"]
    assert headline["chosen"] in ("logreg", "cnn/seed0", "finetune", "ensemble")
    assert sorted(key for key in headline if key.startswith("test.accuracy.")) == [
        f"test.accuracy.{name}" for name in ("cnn/seed0", "ensemble", "finetune", "logreg")
    ]

    narrow = project.command(sys.executable, "-m", "imgclf", "experiments", "--csv").stdout
    columns = next(csv.reader(io.StringIO(narrow)))
    assert len(columns) <= 30, columns
    assert {"chosen", "test.accuracy", "test.accuracy_lo", "test.accuracy_hi"} <= set(columns)
    assert not [column for column in columns if "/" in column and "test." not in column]
    # The full table, for comparison: every param and every dependency (docs/experiments.md).
    full = next(csv.reader(io.StringIO(project.dvc("exp", "show", "--csv").stdout)))
    assert "src/imgclf/core" in full and "cnn.epochs" in full and "cnn.epochs" not in columns
