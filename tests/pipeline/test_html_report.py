"""The HTML report of the built pipeline in a real headless browser (Debian's Chromium, driven
by Selenium through Debian's ChromeDriver): it loads from the file system with no console
error, every image shows, every number equals its metrics file, each confusion cell opens to
as many images as it counts, and `imgclf compare --html` draws the images two runs answer
differently."""

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from support.project import Project

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# No sandbox as root; no background connections on a closed network (each would be refused).
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL_IMAGES_SHOWN = """return [...document.images].map(image => [image.alt, image.complete,
    image.naturalWidth])"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(
            "no /usr/bin/chromium or /usr/bin/chromedriver: install Debian's chromium and "
            "chromium-driver packages (.ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def open_page(browser: webdriver.Chrome, page: Path) -> None:
    browser.get(page.resolve().as_uri())
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    images = browser.execute_script(ALL_IMAGES_SHOWN)
    assert images, f"{page}: no image"
    assert [alt for alt, complete, width in images if not (complete and width > 0)] == []


def test_the_report_page_shows_its_images_and_the_metrics_files_numbers(
    built_project: Project, browser: webdriver.Chrome
) -> None:
    root = built_project.root
    open_page(browser, root / "reports/report.html")

    numbers = browser.find_elements(By.CSS_SELECTOR, "[data-model][data-key]")
    models = {element.get_attribute("data-model") for element in numbers}
    assert models == {"cnn/seed0", "logreg", "finetune", "ensemble"}
    for element in numbers:
        model, key = element.get_attribute("data-model"), element.get_attribute("data-key")
        expected = json.loads((root / f"metrics/evaluation/models/{model}.json").read_text())[key]
        assert float(element.get_attribute("data-value")) == expected, (model, key)
        assert element.text == f"{expected:.3f}", (model, key)
    headline = json.loads((root / "metrics/evaluation/headline.json").read_text())
    answer = browser.find_element(By.TAG_NAME, "strong").text
    assert answer == headline["chosen"]

    cells = browser.find_elements(By.CSS_SELECTOR, "td.cell")
    test_images = json.loads((root / "metrics/split.json").read_text())["test"]
    assert sum(int(cell.get_attribute("data-count")) for cell in cells) == test_images
    cell = max(cells, key=lambda cell: int(cell.get_attribute("data-count")))
    thumbnails = cell.find_elements(By.TAG_NAME, "img")
    assert not any(image.is_displayed() for image in thumbnails)  # closed until clicked
    cell.find_element(By.TAG_NAME, "summary").click()
    assert len(thumbnails) == int(cell.get_attribute("data-count"))
    assert all(image.is_displayed() for image in thumbnails)


def test_compare_html_shows_the_images_whose_prediction_changed(
    built_project: Project, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """The built run against itself with one model's test predictions swapped in: the page
    lists exactly the images the two answer differently, each with both answers."""
    project = Project(tmp_path / "project", template=built_project)
    shutil.copyfile(
        project.root / "data/predictions/logreg.h5",
        project.root / "data/predictions/finetune.h5",
    )
    page = tmp_path / "changes.html"
    compared = project.command(
        sys.executable,
        "-m",
        "imgclf",
        "compare",
        "HEAD",
        "workspace",
        "--model",
        "finetune",
        "--html",
        str(page),
    ).stdout
    assert f"wrote {page}" in compared
    open_page(browser, page)
    changed = browser.find_elements(By.CSS_SELECTOR, "figure.thumb")
    assert changed and all("→" in figure.text for figure in changed)
    assert f"{len(changed)} images changed prediction" in compared
