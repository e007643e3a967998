"""The README's demo figures are the committed metrics (`make run` rewrites both): every cell
of its two demo tables, their row order, and the counts its prose states about them."""

import re

import pytest

from imgclf.core.fileio import read_json
from support import REPO

METRICS = REPO / "metrics" / "evaluation"
NUMBER = r"[−+-]?\d+\.\d+"


def demo_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("### What the demo shows")
    return text[start : text.index("\n##", start + 4)]


def table_rows(section: str, header: str) -> list[list[str]]:
    """The cells of the table whose header row starts with `header`."""
    lines = section[section.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def model_name(cell: str) -> str:
    return re.search(r"`([^`]+)`", cell).group(1)


def numbers(cell: str) -> list[float]:
    return [float(value.replace("−", "-")) for value in re.findall(NUMBER, cell)]


@pytest.fixture(scope="module")
def metrics() -> dict[str, dict[str, float]]:
    files = sorted((METRICS / "models").rglob("*.json"))
    return {
        path.relative_to(METRICS / "models").with_suffix("").as_posix(): read_json(path)
        for path in files
    }


def close(stated: float, value: float) -> bool:
    """`stated` is `value` rounded to the digits it shows (at most 3 decimals)."""
    return abs(stated - value) <= 0.0005 + 1e-9


def test_the_results_table_is_the_metrics_in_the_order_chosen(metrics: dict) -> None:
    summary = read_json(METRICS / "summary.json")
    rows = table_rows(demo_section(), "| model (rows in the order chosen on val)")
    assert [model_name(row[0]) for row in rows] == summary["ranking"]
    for name, test, versus, centre, val in ((model_name(row[0]), *row[1:]) for row in rows):
        values = metrics[name]
        accuracy, low, high = numbers(test)
        assert close(accuracy, values["test.accuracy"]), name
        assert close(low, values["test.accuracy_lo"]) and close(high, values["test.accuracy_hi"])
        assert close(numbers(val)[0], values["val.accuracy"]), name
        if "test_1crop.accuracy" in values:
            assert close(numbers(centre)[0], values["test_1crop.accuracy"]), name
        if name == summary["chosen"]:
            assert versus == "chosen"
            continue
        difference, p_value = numbers(versus)
        comparison = summary["vs_chosen"][name]
        assert close(difference, comparison["accuracy_diff"]), name
        digits = len(str(p_value).split(".")[1])
        assert p_value == round(comparison["p_value"], digits), name


def test_the_calibration_table_and_what_the_prose_says_of_it(metrics: dict) -> None:
    section = demo_section()
    rows = table_rows(section, "| model | test NLL | test ECE |")
    assert {model_name(row[0]) for row in rows} == set(metrics)
    for row in rows:
        values = metrics[model_name(row[0])]
        nll, ece = numbers(row[1]), numbers(row[2])
        assert close(nll[0], values["test.nll"]) and close(nll[1], values["test.nll_scaled"])
        assert close(ece[0], values["test.ece"]) and close(ece[1], values["test.ece_scaled"])
    lowered_nll = sum(
        values["test.nll_scaled"] < values["test.nll"] for values in metrics.values()
    )
    lowered_ece = sum(
        values["test.ece_scaled"] < values["test.ece"] for values in metrics.values()
    )
    words = {4: "four", 5: "five", 6: "six"}
    if lowered_nll == len(metrics):
        assert re.search(rf"lowered test\s+NLL for all {words[len(metrics)]} models", section)
    else:
        claim = re.search(r"lowered test\s+NLL for (\w+) of the (\w+) models", section)
        assert claim.groups() == (words[lowered_nll], words[len(metrics)])
    assert re.search(rf"ECE for {words[lowered_ece]}\b", section)


def test_the_export_named_is_the_one_evaluate_chose() -> None:
    choice = read_json(METRICS / "export_choice.json")["model"]
    assert f"The export is `{choice}`" in demo_section()
