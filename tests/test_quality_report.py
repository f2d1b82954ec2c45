"""benchmarks/quality.py end to end on tiny crops with a tiny budget: the report and its parts exist."""

import json

import pytest

from tests.conftest import make_crop_folder, run_script


@pytest.mark.slow
def test_quality_report_writes_tables_figures_and_numbers(tmp_path, capsys):
    crops = make_crop_folder(tmp_path / "crops", count=30)
    demo = make_crop_folder(tmp_path / "demo", count=30, seed=1)
    out = tmp_path / "results"
    code, stdout, err = run_script("benchmarks.quality", [
        "--crops", str(crops), "--demo-crops", str(demo), "--budget-minutes", "0.1", "--out", str(out),
        "--only", "paper,consistent", "--loss", "PSNR"], capsys)
    assert code == 0, err
    report = (out / "RESULTS.md").read_text()
    for heading in ("## Paper pairs", "## Consistent pairs", "## Across sources"):
        assert heading in report
    assert "| bicubic (OpenCV kernel) |" in report and "chosen on validation" in report
    assert "--loss PSNR" in report and "trained with PSNR loss" in report
    assert (out / "models" / "paper_espcn" / "CNN_espcn_PSNR_model.keras").is_file()
    assert (out / "paper_samples.png").is_file() and (out / "consistent_samples.png").is_file()
    numbers = json.loads((out / "results.json").read_text())
    assert numbers["loss"] == "PSNR"
    paper_rows = numbers["benchmarks"]["paper"]
    assert [row["method"] for row in paper_rows][:1] == ["bicubic (OpenCV kernel)"]
    assert paper_rows[0]["gain"] == 0 and len(paper_rows) == 5  # bicubic, two networks, each with and without x8
    code, _, err = run_script("benchmarks.quality", ["--crops", str(crops), "--budget-minutes", "1", "--only", "nope",
                                                     "--out", str(out)], capsys)
    assert code == 2 and "unknown benchmark" in err
