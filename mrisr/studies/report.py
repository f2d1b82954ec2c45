"""OUTPUT_DIR/report.html: one page that opens from disk (no network; pictures inline), a summary table at
the top, then for every scan its picture (a plane of each orientation: the thick input, the cubic spline,
the output), the held-out check, the time, warnings and failures."""

import base64
import html
import time
from pathlib import Path

from mrisr.core.files import atomic_write
from mrisr.version import __version__

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}
th{background:#eee}.failed{color:#a00}.warning{color:#a60}.scan{border-top:1px solid #ccc;margin-top:1.5em}
img{max-width:100%;height:auto;border:1px solid #ccc}"""


def _picture(path):
    path = Path(path) if path else None
    if path is None or not path.is_file():
        return "<p>(no picture)</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="thick input, cubic spline and output" src="data:image/png;base64,{data}">'


def _gain(result):
    gain = result.get("held_out_gain")
    return "" if gain is None else f"{gain:+.2f} dB"


def write_report(output_dir, results, input_path, workers, seconds):
    """Write the report of a study's `results` (engine.run_study), whole or not at all; returns its path."""

    counts = {status: sum(r["status"] == status for r in results) for status in ("done", "kept", "skipped", "failed")}
    gains = [r["held_out_gain"] for r in results if r.get("held_out_gain") is not None]
    rows = "".join(
        f'<tr class="{r["status"]}"><td><a href="#scan{index}">{html.escape(r["name"])}</a></td>'
        f'<td>{r["status"]}</td><td>{_gain(r)}</td>'
        f'<td>{"" if r.get("seconds") is None else round(r["seconds"])}</td>'
        f'<td>{len(r.get("warnings", []))}</td></tr>' for index, r in enumerate(results))
    sections = []
    for index, r in enumerate(results):
        lines = [f'<div class="scan" id="scan{index}"><h2>{html.escape(r["name"])}</h2>']
        if r["status"] in ("failed", "skipped"):
            lines.append(f'<p class="failed">{r["status"]}: {html.escape(r.get("reason", ""))}</p>')
        else:
            lines.append(f"<p>output: {html.escape(str(r.get('output', '')))}; held-out slices: the network "
                         f"{_gain(r)} over the cubic spline"
                         + (f"; {r['steps']} steps from {html.escape(str(r.get('start')))}" if r.get("steps") else "")
                         + (f"; {round(r['seconds'])} s" if r.get("seconds") is not None else "")
                         + ("; done before this run" if r["status"] == "kept" else "") + "</p>")
            lines += [f'<p class="warning">{html.escape(w)}</p>' for w in r.get("warnings", [])]
            lines.append(_picture(r.get("picture")))
        lines.append("</div>")
        sections.append("\n".join(lines))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mrisr study: {html.escape(str(input_path))}</title>
<style>{STYLE}</style></head><body>
<h1>Thin slices of {html.escape(str(input_path))}</h1>
<p>{counts["done"]} scan(s) made finer in this run, {counts["kept"]} done before, {counts["skipped"]} skipped,
<span class="failed">{counts["failed"]} failed</span>; {seconds / 60:.1f} min on {html.escape(workers)};
mean held-out gain over the cubic spline {f"{sum(gains) / len(gains):+.2f} dB" if gains else "(none)"};
mrisr {__version__}, {time.strftime("%Y-%m-%d %H:%M")}. Each picture: a plane of each orientation through the
middle of the scan, as the thick input (each slice repeated), the cubic spline along the slices, and the output.
The held-out gain is measured on in-plane slices the network did not learn from; it cannot see whether the
anatomy across the slices is like the in-plane detail (a warning says where the scan suggests it is not).</p>
<table><tr><th>scan</th><th>status</th><th>held-out gain</th><th>seconds</th><th>warnings</th></tr>{rows}</table>
{"".join(sections)}
</body></html>
"""
    path = Path(output_dir) / "report.html"
    atomic_write(path, lambda temporary: Path(temporary).write_text(page, encoding="utf-8"))
    return path
