"""Tate's subject index as a SKOS thesaurus (Turtle), for ``arttag train --vocabulary``.

Tate publishes its subject hierarchy (areas, groups, tags) apart from the artworks; the public
collection file carries it only through the subjects each artwork names. This script rebuilds it
from every row of the file, so it stands in for the published index: it names the tags that only
held-out artworks carry, which is exactly what a museum's own thesaurus does for terms no
catalogued artwork uses yet. Each tag is a ``skos:Concept`` with ``skos:notation`` = Tate's tag id
(the id the catalogue uses), ``prefLabel`` its name, ``broader`` its group, whose ``broader`` is its area.

    .venv/bin/python bench/tate_thesaurus.py --out <bundles>/tate-thesaurus.ttl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arttag.catalogue.records import load_catalogue

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
BASE = "http://arttag.invalid/tate/subject/"


def main(argv: list[str] | None = None) -> int:
    import rdflib
    from rdflib.namespace import RDF, SKOS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    records, _ = load_catalogue(args.catalogue)
    graph = rdflib.Graph()
    graph.bind("skos", SKOS)
    areas: dict[str, str] = {}
    tags: dict[str, tuple[str, str | None]] = {}
    for r in records:
        areas.update(r.group_areas)
        for t in r.metadata.tags:
            tags.setdefault(t.id, (t.label or t.id, t.group))

    def node(kind: str, name: str) -> rdflib.URIRef:
        return rdflib.URIRef(BASE + kind + "/" + "".join(c if c.isalnum() else "_" for c in name))

    def concept(ref: rdflib.URIRef, label: str) -> None:
        graph.add((ref, RDF.type, SKOS.Concept))
        graph.add((ref, SKOS.prefLabel, rdflib.Literal(label, lang="en")))

    for tag_id, (label, group) in tags.items():
        ref = rdflib.URIRef(BASE + "tag/" + tag_id)
        concept(ref, label)
        graph.add((ref, SKOS.notation, rdflib.Literal(tag_id)))
        if group:
            g = node("group", group)
            concept(g, group)
            graph.add((ref, SKOS.broader, g))
            if areas.get(group):
                a = node("area", areas[group])
                concept(a, areas[group])
                graph.add((g, SKOS.broader, a))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    graph.serialize(args.out, format="turtle")
    print(f"{len(tags)} tags, {len({g for _, g in tags.values() if g})} groups, {len(set(areas.values()))} areas "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
