"""Writes an audit as ``audit.json`` and a self-contained ``audit.html`` (plots embedded as base64 PNGs).

Every plot is drawn from numbers that are also in ``audit.json``, so the
JSON holds the same figures as the HTML.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

SECTIONS = (
    ("rows", "Catalogue rows"),
    ("coverage", "Coverage"),
    ("usage", "Tag usage"),
    ("duplicates", "Near-duplicate and inconsistent tags"),
    ("consistency", "Labelling consistency"),
    ("overlooked", "Likely overlooked tags"),
    ("learnability", "Learnability"),
)
TABLE_ROWS = 50


def write_report(audit: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``audit.json`` and ``audit.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "audit.json", out / "audit.html"
    json_path.write_text(json.dumps(audit, indent=1, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render_html(audit), encoding="utf-8")
    return json_path, html_path


# -- plots ------------------------------------------------------------------


def _figure(draw: Callable[[Any], None], width: float = 7.0, height: float = 3.6) -> str:
    """Draw with matplotlib (Agg) and return an ``<img>`` with the PNG as a data URI."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=90)
    try:
        draw(ax)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _bar(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str = "",
         ylabel: str = "", horizontal: bool = False, log: bool = False) -> str:
    def draw(ax: Any) -> None:
        if horizontal:
            ax.barh(range(len(values)), values, color="#4c72b0")
            ax.set_yticks(range(len(values)), labels, fontsize=7)
            ax.invert_yaxis()
            if log:
                ax.set_xscale("log")
        else:
            ax.bar(range(len(values)), values, color="#4c72b0")
            step = max(1, len(labels) // 20)
            ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right", fontsize=7)
            if log:
                ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)

    height = 3.6 if not horizontal else max(3.0, 0.18 * len(values) + 1)
    return _figure(draw, height=height)


# -- HTML helpers -----------------------------------------------------------


def _table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]], limit: int = TABLE_ROWS) -> str:
    rows = list(rows)
    head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows[:limit]:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            if isinstance(value, list):
                value = ", ".join(_short(v) for v in value)
            cells.append(f"<td>{escape('' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{len(rows) - limit} more rows in audit.json.</p>' if len(rows) > limit else ""
    )
    if not rows:
        return '<p class="note">None found.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _short(value: Any) -> str:
    if isinstance(value, dict):
        if "label" in value:
            return f"{value['label']} ({value.get('usage', value.get('carried_by', ''))})"
        if "artwork_id" in value:
            return f"{value['artwork_id']}: {value.get('title', '')}"
    return str(value)


def _p(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def _skipped(section: dict[str, Any]) -> str | None:
    if section.get("skipped"):
        return f'<p class="skipped">{escape(section.get("note", "skipped"))}</p>'
    return None


# -- sections ---------------------------------------------------------------


def _rows(audit: dict[str, Any]) -> str:
    r = audit["rows"]
    parts = [_p(f"{r['read']} rows read, {r['good']} good, {r['bad']} bad (skipped).")]
    if r["bad"]:
        parts.append(_table(r["bad_rows"], [("line", "line"), ("error", "error")]))
    return "".join(parts)


def _coverage(audit: dict[str, Any]) -> str:
    c = audit["coverage"]
    hist = c["tags_per_artwork"]["histogram"]
    fields = c["fields"]
    return "".join([
        _p(f"{c['untagged']} of {c['artworks']} artworks have no tags ({c['untagged_share']:.1%}). "
           f"Tags per artwork: mean {c['tags_per_artwork']['mean']}, median {c['tags_per_artwork']['median']}, "
           f"max {c['tags_per_artwork']['max']}."),
        _bar(list(hist), list(hist.values()), "Artworks by number of tags", "tags", "artworks"),
        _bar(list(fields), [f["absent_share"] for f in fields.values()],
             "Share of artworks where the field is missing or empty", horizontal=True),
        _table(({"field": k, **v} for k, v in fields.items()),
               [("field", "field"), ("missing", "missing (null)"), ("empty", "empty"), ("absent_share", "share")],
               limit=100),
        "<h3>Untagged artworks (examples)</h3>",
        _table(c["untagged_examples"], [("artwork_id", "artwork"), ("title", "title")]),
    ])


def _usage(audit: dict[str, Any]) -> str:
    u = audit["usage"]
    tail = u["long_tail"]
    bins = u["usage_bins"]
    decades = [d for d in u["by_acquisition_decade"] if d["decade"]]
    top = u["most_used"]
    return "".join([
        _p(f"{u['distinct_tags']} distinct tags, {u['tag_uses']} uses. {u['used_once']['count']} tags are used "
           f"once; {tail['count']} ({tail['share_of_tags']:.1%} of tags, {tail['share_of_uses']:.1%} of uses) "
           f"at most {tail['max_usage']} times: too few examples for a model to learn them."),
        _bar(list(bins), list(bins.values()), "Number of tags by how many artworks carry them",
             "artworks carrying the tag", "tags"),
        _bar([t["label"] for t in top], [t["usage"] for t in top], "Most used tags", horizontal=True),
        _bar([d["decade"] for d in decades], [d["artworks"] for d in decades],
             "Artworks by acquisition decade", "decade", "artworks"),
        _bar([d["decade"] for d in decades], [d["tagged_share"] for d in decades],
             "Share of artworks tagged, by acquisition decade", "decade", "share tagged"),
        _table(u["by_acquisition_decade"], [("decade", "decade"), ("artworks", "artworks"), ("tagged", "tagged"),
               ("tagged_share", "share tagged"), ("mean_tags", "mean tags"), ("distinct_tags", "distinct tags")],
               limit=100),
        "<h3>Tags used once</h3>",
        _table(u["used_once"]["tags"], [("tag_id", "id"), ("label", "label"), ("group", "group")]),
    ])


def _duplicates(audit: dict[str, Any]) -> str:
    d = audit["duplicates"]
    lex, sem = d["lexical"], d["semantic"]
    lex_rows = [
        {"kinds": g["kinds"], "keep": next(t["label"] for t in g["tags"] if t["tag_id"] == g["keep"]),
         "tags": g["tags"], "examples": [e for t in g["tags"] for e in t["examples"][:1]]}
        for g in lex["groups"]
    ]
    sem_rows = [
        {"similarity": p["similarity"], "tags": p["tags"], "same_group": p["same_group"],
         "examples": [e for t in p["tags"] for e in t["examples"][:1]]}
        for p in sem["pairs"]
    ]
    parts = [
        _p(f"{lex['count']} groups of tags whose labels differ only in case, punctuation, word order or plural "
           "(or are the same label in different groups). The most used tag of each group is proposed to keep."),
        _table(lex_rows, [("kinds", "difference"), ("keep", "keep"), ("tags", "tags (usage)"),
                          ("examples", "example artworks")]),
    ]
    qualified = d.get("qualified", {"count": 0, "groups": []})
    parts += [
        _p(f"{qualified['count']} tags have qualified variants in the same group (\"townscape\" and "
           "\"townscape, distant\"): define how each variant differs, or merge it."),
        _table([{"base": [g["base"]], "variants": g["variants"],
                 "examples": [e for t in g["variants"] for e in t["examples"][:1]]}
                for g in qualified["groups"]],
               [("base", "tag (usage)"), ("variants", "qualified variants (usage)"),
                ("examples", "example artworks")]),
    ]
    if sem["encoder"] is None:
        parts.append('<p class="skipped">Embedding comparison of tag labels skipped: no encoder, or the '
                     'hashing encoder, whose hash collisions make single-word labels look identical.</p>')
    else:
        parts += [
            _p(f"{sem['count']} pairs of tags whose label embeddings ({sem['encoder']}) have cosine >= "
               f"{sem['threshold']}; {sem['shown']} shown in audit.json."),
            _table(sem_rows, [("similarity", "cosine"), ("tags", "tags (usage)"), ("same_group", "same group"),
                              ("examples", "example artworks")]),
        ]
    return "".join(parts)


def _consistency(audit: dict[str, Any]) -> str:
    c = audit["consistency"]
    skipped = _skipped(c)
    if skipped:
        return skipped
    rows = [
        {**g, "members": [f"{m['artwork_id']}: {m['title']} [{'; '.join(m['tags'])}]" for m in g["members"][:5]]}
        for g in c["groups"]
    ]
    parts = [
        _p(f"{c['artworks_compared']} tagged artworks in {c['blocks_compared']} blocks (same group title, or same "
           f"title) were compared; {c['artworks_in_near_identical_groups']} fall in groups of near-identical "
           f"artworks (text-embedding cosine >= {c['threshold']}, {c['encoder']}); {c['inconsistent_groups']} "
           "of those groups disagree about their tags "
           f"({c['inconsistent_groups_uninformative_titles']} of them are works titled like '[title not known]', "
           "whose identical text says nothing about the image: listed last)."),
    ]
    if c["groups"]:
        hist = c["agreement_histogram"]
        parts.append(_bar(list(hist), list(hist.values()),
                          f"Tag agreement (Jaccard) in all {c['inconsistent_groups']} inconsistent groups",
                          "agreement (bin start)", "groups"))
    parts.append(_table(rows, [("block", "block"), ("size", "artworks"), ("agreement", "agreement"),
                               ("common_tags", "tags all carry"), ("disagreeing_tags", "tags some carry (how many)"),
                               ("members", "members (first 5)")]))
    return "".join(parts)


def _overlooked(audit: dict[str, Any]) -> str:
    o = audit["overlooked"]
    skipped = _skipped(o)
    if skipped:
        return skipped
    parts = [
        _p(f"Model {audit.get('model_version')}: {o['count']} suggestions with confidence >= {o['min_confidence']} "
           f"are missing from the human tags of {o['artworks_with_candidates']} of {o['artworks_reviewed']} "
           f"tagged artworks ({o['scope']} split). Ranked by confidence, for review."),
    ]
    if o["candidates"]:
        hist = {k: v for k, v in o["confidence_histogram"].items() if float(k) + 0.1 > o["min_confidence"]}
        parts.append(_bar(list(hist), list(hist.values()),
                          f"Confidence of all {o['count']} likely overlooked tags", "confidence (bin start)",
                          "suggestions"))
    parts += [
        _table(o["candidates"], [("artwork_id", "artwork"), ("title", "title"), ("label", "suggested tag"),
                                 ("confidence", "confidence"), ("assigned", "human tags"),
                                 ("explanation", "why")]),
        "<h3>Tags most often overlooked</h3>",
        _table(o["most_overlooked_tags"], [("label", "tag"), ("count", "times")]),
    ]
    return "".join(parts)


def _learnability(audit: dict[str, Any]) -> str:
    learn = audit["learnability"]
    skipped = _skipped(learn)
    if skipped:
        return skipped
    rows = [r for r in learn["tags"] if r["dev_support"]]
    m = learn["micro"]

    def scatter(ax: Any) -> None:
        colours = {"learnable": "#55a868", "too rare": "#c44e52", "inconsistent": "#dd8452", "hard": "#8172b3"}
        for diagnosis in sorted({r["diagnosis"] for r in rows}):
            pts = [r for r in rows if r["diagnosis"] == diagnosis]
            ax.scatter([max(r["train_usage"], 0.8) for r in pts], [r["f1"] or 0.0 for r in pts], s=8,
                       label=diagnosis, color=colours.get(diagnosis, "#937860"), alpha=0.7)
        ax.set_xscale("log")
        ax.set_xlabel("training artworks carrying the tag")
        ax.set_ylabel("dev F1")
        ax.set_title("Per-tag dev F1 against training usage", fontsize=10)
        ax.legend(fontsize=7)

    worst = sorted(rows, key=lambda r: (r["f1"] or 0.0, -r["dev_support"]))
    return "".join([
        _p(f"On {learn['dev_artworks_evaluated']} tagged dev artworks, with confidence >= {learn['threshold']} "
           f"as predicted: micro precision {m['precision']}, recall {m['recall']}, F1 {m['f1']}. "
           f"Diagnoses of tags present in dev: {learn['diagnoses']}."),
        _figure(scatter) if rows else "",
        "<h3>Tags the model cannot learn (lowest F1 first)</h3>",
        _table(worst, [("label", "tag"), ("train_usage", "train uses"), ("dev_support", "dev uses"),
                       ("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                       ("inconsistency", "inconsistency"), ("diagnosis", "likely reason")]),
    ])


_RENDER = {
    "rows": _rows, "coverage": _coverage, "usage": _usage, "duplicates": _duplicates,
    "consistency": _consistency, "overlooked": _overlooked, "learnability": _learnability,
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left}
th{background:#f0f0f0} .note{color:#666;font-size:12px} .skipped{color:#a33;font-style:italic}
img{display:block;margin:.5em 0;max-width:100%}
"""


def render_html(audit: dict[str, Any]) -> str:
    nav = " · ".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    timings = ", ".join(f"{k} {v}s" for k, v in audit.get("timings_s", {}).items())
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>arttag audit</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>Catalogue tag audit</h1>",
        _p(f"Catalogue {audit['catalogue']}, generated {audit['generated_at']}, encoder {audit.get('encoder')}, "
           f"model {audit.get('model_version') or 'none'}. Timings: {timings}."),
        f"<nav>{nav}</nav>",
    ]
    for key, title in SECTIONS:
        body.append(f'<section id="{key}"><h2>{escape(title)}</h2>{_RENDER[key](audit)}</section>')
    body.append("</body></html>")
    return "\n".join(body)
