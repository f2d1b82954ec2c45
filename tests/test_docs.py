"""The README and docs/ stay true to the code: every relative link reaches a file (and its heading), and
every option they quote exists on the script they quote it with."""

import argparse
import importlib
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "pretrained").glob("*.md")),
             ROOT / "results" / "RESULTS.md"]
COMMANDS = {"upscale.py": "upscale", "CNN.py": "cnn", "GAN.py": "gan", "extract_crops.py": "extract_crops",
            "balance_data.py": "balance_data", "CNN_plot_losses.py": "cnn_plot_losses",
            "plot_visual_predictions.py": "plot_visual_predictions", "mrisr.commands.pretrain_self": "pretrain_self"}
# Options of other programs that the documents quote (pip, pytest, make, dcm2niix, /usr/bin/time).
OTHER_PROGRAMS = {"--quiet", "--upgrade", "--durations", "--index-url", "--extra-index-url", "--version", "--help"}


def parser_options(parser):
    """Every option string of a parser and of its sub-commands."""
    options = set()
    for action in parser._actions:
        options.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= parser_options(sub)
    return options


def script_options():
    """{script name: its options}: the commands from their parsers, the benchmarks from their source."""
    options = {name: parser_options(importlib.import_module(f"mrisr.commands.{module}").build_parser())
               for name, module in COMMANDS.items()}
    options["upscale.py"] |= parser_options(importlib.import_module("mrisr.commands.study").build_parser())  # study
    for path in (ROOT / "benchmarks").glob("*.py"):
        options[f"benchmarks/{path.name}"] = set(re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", path.read_text()))
    return options


def code_pieces(text):
    """The inline code spans and the lines of fenced code blocks of a Markdown text."""
    pieces = []
    for number, block in enumerate(re.split(r"^```.*$", text, flags=re.MULTILINE)):
        if number % 2:
            pieces += block.splitlines()
        else:
            pieces += re.findall(r"`([^`\n]+)`", block)
    return pieces


def slug(heading):
    """GitHub's anchor of a heading."""
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


def anchors(path):
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_its_file_and_heading(document):
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{document.name}: links to nothing: {broken}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_option_exists_on_its_script(document):
    options = script_options()
    everything = set().union(*options.values()) | OTHER_PROGRAMS
    wrong = []
    for piece in code_pieces(document.read_text()):
        script = None
        for token in re.findall(r"[\w./-]+\.py|--[a-z][a-z0-9-]*", piece):
            if token.endswith(".py"):
                name = token.split("/")[-1] if not token.startswith("benchmarks/") else token
                script = name if name in options else None
            elif script is not None and token not in options[script]:
                wrong.append(f"{script} {token}")
            elif script is None and token not in everything:
                wrong.append(token)
    assert not wrong, f"{document.name} quotes options that do not exist: {sorted(set(wrong))}"


def test_the_checks_catch_a_wrong_option_and_a_broken_link(tmp_path):
    """The two checks above bite: an option no script has and a link to no file are found."""
    document = tmp_path / "bad.md"
    document.write_text("Run `python3 upscale.py self a b --no-such-option` and see [here](missing.md).\n")
    with pytest.raises(AssertionError, match="--no-such-option"):
        test_every_quoted_option_exists_on_its_script(document)
    with pytest.raises(AssertionError, match="missing.md"):
        test_every_relative_link_reaches_its_file_and_heading(document)


def test_the_upscaling_reference_names_every_option_of_upscale():
    """docs/upscaling.md is the reference of upscale.py (and upscale.py study): it names each of their options."""
    text = (ROOT / "docs" / "upscaling.md").read_text()
    options = script_options()["upscale.py"] - {"--help"}
    missing = sorted(o for o in options if not re.search(re.escape(o) + r"(?![a-z-])", text))
    assert not missing, f"docs/upscaling.md does not name {missing}"


def test_citation_and_changelog_name_the_packages_version():
    from mrisr.version import __version__

    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == __version__
    newest = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M).group(1)
    assert newest == __version__


def results_file(*parts):
    import json

    return json.loads((ROOT / "results").joinpath(*parts).read_text())


def self_gain(name):
    """The gain over the cubic spline of a through-plane benchmark result, in dB."""
    scores = results_file("through_plane", name, "through_plane.json")["records"][0]["scores"]
    return scores["ours (self)"]["psnr"] - scores["cubic spline"]["psnr"]


def readme_headlines():
    """(what the README says, where the figure comes from) for every headline number of the README."""
    paper = {row["method"]: row for row in results_file("results.json")["benchmarks"]["paper"]}
    shipped = results_file("shipped_weights", "shipped_weights.json")

    def crops(row):
        return f"{row['psnr_mean']:.2f} / {row['ssim_mean']:.3f}"

    def shipped_row(part, model, scale):
        found, bicubic = shipped[part][model], shipped[part][f"bicubic_x{scale}"]
        return f"{found['psnr']:.2f} / {found['ssim']:.3f}", f"{found['psnr'] - bicubic['psnr']:+.2f} dB"

    best = paper["edsr_global + x8 self-ensemble"]
    return [
        (f"| {crops(paper['bicubic (OpenCV kernel)'])} |", "results.json: bicubic, paper's pairs"),
        (f"| {crops(paper['paper CNN, SSIM then MSE (published)'])} | "
         f"{paper['paper CNN, SSIM then MSE (published)']['gain']:.2f} dB |", "results.json: the paper's best"),
        (f"| {crops(best)} | **{best['gain']:+.2f} dB** |", "results.json: edsr_global"),
        (f"| {shipped_row('a', 'mri-x2', 2)[0]} | **{shipped_row('a', 'mri-x2', 2)[1]}** |", "shipped_weights: mri-x2"),
        (f"| {shipped_row('a', 'mri-x4', 4)[0]} | **{shipped_row('a', 'mri-x4', 4)[1]}** |", "shipped_weights: mri-x4"),
        (f"gain {shipped_row('d', 'mri-x2', 2)[1]} (x2) and {shipped_row('d', 'mri-x4', 4)[1]} (x4)",
         "shipped_weights: a real head's whole slices"),
        (f"**{self_gain('t1_x4_start'):+.2f} dB** over a cubic spline", "through_plane/t1_x4_start"),
        (f"({self_gain('t1_x2_start'):+.2f} dB at x2)", "through_plane/t1_x2_start"),
        (f"**{self_gain('epi_x2_start'):+.2f} dB**", "through_plane/epi_x2_start"),
    ]


def test_the_readmes_headline_numbers_are_those_of_the_results_files():
    readme = (ROOT / "README.md").read_text()
    missing = [f"{source}: {text!r}" for text, source in readme_headlines() if text not in readme]
    assert not missing, "README numbers that are not the results files':\n" + "\n".join(missing)


@pytest.mark.parametrize("script", sorted(set(COMMANDS.values())))
def test_every_commands_help_says_where_the_documents_it_names_are(script, capsys):
    module = importlib.import_module(f"mrisr.commands.{script}")
    with pytest.raises(SystemExit):
        module.main(["--help"])
    folder = re.search(r"docs/: (\S+)", capsys.readouterr().out).group(1)
    assert all((ROOT / "docs" / name).is_file() and (Path(folder) / name).is_file()
               for name in ("upscaling.md", "reproduction.md", "gpu.md"))
