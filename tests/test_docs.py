"""The README is a front page, its links lead somewhere, and its numbers are the measured ones.

Every number in the README's Results table (and the encoding rate beside use 2) is read here from
the machine-written file it comes from — the pages `hsijax leave-out` writes, the JSON
`benchmarks/encode.py` writes — so a rerun that changes a number fails this test until the README
says the new one. Reads files only: no subprocess, no JAX.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINEAR = ROOT / "docs" / "leave_out_linear" / "README.md"  # hsijax leave-out --config .../leave_out_linear.py
CNN = ROOT / "docs" / "leave_out" / "README.md"  # hsijax leave-out (the poster's CNN)
ENCODE = ROOT / "benchmarks" / "results" / "encode.json"  # benchmarks/encode.py
MAX_README_LINES = 250

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/README.md"))]


def prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", prose(path.read_text()),
                                                    flags=re.MULTILINE)}


def table_row(text: str, first_cell: str) -> list[str]:
    """The cells of the first Markdown table row whose first cell starts with ``first_cell``."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cell):
            return cells
    raise AssertionError(f"no table row starting {first_cell!r}")


def fine_tune_oa(page: Path, fraction: str, method: str) -> str:
    """The OA cell of ``method`` in a leave-out page's fine-tuning table at ``fraction`` ("1%")."""
    text = page.read_text()
    block = text[text.index(f"indian_pines: {fraction} labels"):]
    return table_row(block, method)[1]


def reconstruction(page: Path, first_cell: str) -> dict[str, str]:
    """{scene or "mean": MPSNR} of one row of a leave-out page's reconstruction table."""
    text = page.read_text()
    scenes = table_row(text, "MPSNR dB (MSSIM)")[1:]
    values = [cell.split(" (")[0] for cell in table_row(text, first_cell)[1:]]
    return dict(zip(scenes, values))


def results_table() -> str:
    text = README.read_text()
    return text[text.index("## Results"):text.index("## Documentation")]


def test_the_readme_is_a_front_page():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines, {lines - MAX_README_LINES} over {MAX_README_LINES}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file(path):
    broken = []
    for target in LINK.findall(prose(path.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_results_table_is_the_leave_out_pages():
    table = results_table()
    linear = table_row(table, "the linear network on the shared grid")
    assert linear[1] == reconstruction(LINEAR, "shared encoder:")["mean"]
    assert linear[2:4] == [fine_tune_oa(LINEAR, f, "pretrained") for f in ("1%", "5%")]
    assert table_row(table, "the same network from random weights")[2:4] == [
        fine_tune_oa(LINEAR, f, "scratch") for f in ("1%", "5%")]
    cnn = table_row(table, "the poster's CNN (hsijax)")
    assert cnn[1] == reconstruction(CNN, "shared encoder:")["mean"] + " †"
    assert cnn[2:4] == [fine_tune_oa(CNN, f, "pretrained") for f in ("1%", "5%")]
    svm = table_row(table, "RBF SVM")[2:4]
    assert svm == [fine_tune_oa(LINEAR, f, "svm") for f in ("1%", "5%")] == [fine_tune_oa(CNN, f, "svm")
                                                                          for f in ("1%", "5%")]
    assert table_row(table, "the scene's own mean spectrum")[1] == reconstruction(LINEAR, "the scene's mean spectrum")["mean"]
    poster = re.findall(r"the poster: (\d+\.\d+) % OA", LINEAR.read_text())
    assert table_row(table, "*the poster's reported result*")[2:4] == [f"*{value}*" for value in poster]


def test_the_per_scene_numbers_are_the_linear_page():
    per_scene = reconstruction(LINEAR, "shared encoder:")
    names = {"samson": "Samson", "houston2018": "Houston 2018", "paris_hyperion": "Paris", "indian_pines": "Indian Pines"}
    sentence = " ".join(results_table().split())
    for scene, name in names.items():
        assert re.search(rf"{name} at {per_scene[scene]}\b", sentence), f"{name}: {per_scene[scene]} dB not in the README"


def test_the_encoding_rate_is_the_benchmark():
    measured = json.loads(ENCODE.read_text())
    text = " ".join(README.read_text().split())
    assert f"200-band pixels at {measured['shipped_200_px_s'] / 1e6:.2f} M px/s" in text
    assert f"{measured['shipped_200_fraction_of_matmul'] * 100:.0f} % of the rate of NumPy's" in text
    assert f"({measured['date']}, 2-core CPU)" in text
    compilations = measured["compilations_for_14_poster_band_counts"]
    assert f"{compilations['poster']} programs for the poster's 14 band counts" in text
    assert f"({compilations['pretrained']} programs for those 14 band counts" in text


FEW_LABEL = ROOT / "docs" / "few_label" / "README.md"  # hsijax few-label
FEW_LABEL_COLUMNS = (("indian_pines", 0), ("indian_pines", 1), ("houston2018", 0), ("houston2018", 1),
                     ("houston2013", 0), ("houston2013", 1))  # (scene, fraction: 0 = 1 %, 1 = 5 %)


def few_label_oa(section: str, scene: str, method: str, fraction: int, split: str | None = None) -> str:
    """The OA cell of ``method`` (its title's start) for ``scene`` in a section of the few-label page."""
    text = FEW_LABEL.read_text()
    block = text[text.index(section):]
    block = block[block.index(f"### {scene}\n"):]
    following = block.find("\n### ", 5)
    block = block if following < 0 else block[:following]
    if split:
        block = block[block.index(split):]
    return table_row(block, method)[1 + 2 * fraction]


def few_label_rows() -> dict[str, list[str]]:
    """{the README's row: the page's cells for each column (blank where the page has none)}."""
    per_pixel, spatial = "## Per pixel, random split", "## With spatial context"
    random_split, blocks = "random per-class split:", "spatially disjoint split"
    rows = {
        "per pixel: `hsijax map`": (per_pixel, "**`hsijax map`**", None, 6),
        "per pixel: RBF SVM on the spectra": (per_pixel, "RBF SVM on spectra", None, 6),
        "per pixel: the poster's CNN": (per_pixel, "the poster's CNN, fine-tuned", None, 2),
        "spatial, random split: codes": (spatial, "codes + window means, SVM, majority", random_split, 4),
        "spatial, random split: the same on spectra": (spatial, "spectra + window means, SVM, majority", random_split, 4),
        "spatial, disjoint blocks: codes": (spatial, "codes + window means, SVM, majority", blocks, 4),
        "spatial, disjoint blocks: the same on spectra": (spatial, "spectra + window means, SVM, majority", blocks, 4),
        "spatial, random split: 2-D CNN on code patches": (spatial, "2-D CNN on 9 × 9 patches of the codes", random_split, 4),
        "spatial, random split: 2-D CNN on spectra patches": (spatial, "2-D CNN on 9 × 9 patches of the spectra", random_split, 4),
        "spatial, disjoint blocks: 2-D CNN on code patches": (spatial, "2-D CNN on 9 × 9 patches of the codes", blocks, 4),
        "spatial, disjoint blocks: 2-D CNN on spectra patches": (spatial, "2-D CNN on 9 × 9 patches of the spectra", blocks, 4),
    }
    return {readme: [few_label_oa(section, scene, method, fraction, split) if index < columns else ""
                     for index, (scene, fraction) in enumerate(FEW_LABEL_COLUMNS)]
            for readme, (section, method, split, columns) in rows.items()}


def test_the_few_label_table_is_the_few_label_page():
    text = README.read_text()
    for first_cell, cells in few_label_rows().items():
        assert table_row(text, first_cell)[1:7] == cells, first_cell
    page = FEW_LABEL.read_text()
    gain = table_row(page[page.index("### indian_pines"):], "**`hsijax map`**")[2].split(" ± ")[0]
    assert f"Indian Pines at 1 %: {gain} points over the SVM" in " ".join(text.split())
