"""The tag vocabulary: id, label, level-1 group, level-0 area and usage count.

Built from a training catalogue (Tate's hierarchy) or loaded from a CSV or
SKOS (Turtle, RDF/XML... through rdflib) file for other collections.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from arttag.catalogue.records import CatalogueRecord
from arttag.errors import ArttagError

CSV_COLUMNS = ("id", "label", "group", "area", "usage")


@dataclass(frozen=True)
class Tag:
    id: str
    label: str
    group: str | None = None
    area: str | None = None
    usage: int = 0
    """How many training artworks carry the tag."""

    @property
    def text(self) -> str:
        """What the semantic scorer embeds: the label with its group, e.g. ``bridge (bridges and viaducts)``."""
        label = self.label.replace(" - non-specific", "")
        if self.group and self.group.lower() != label.lower():
            return f"{label} ({self.group})"
        return label


def normalise_label(label: str) -> str:
    return re.sub(r"\s+", " ", label).strip().lower()


class Vocabulary:
    """An ordered set of tags; the order fixes each tag's column in score matrices."""

    def __init__(self, tags: Iterable[Tag]) -> None:
        self.tags: list[Tag] = list(tags)
        self._index = {t.id: i for i, t in enumerate(self.tags)}
        if len(self._index) != len(self.tags):
            raise ArttagError("vocabulary has duplicate tag ids")

    def __len__(self) -> int:
        return len(self.tags)

    def __iter__(self) -> Iterator[Tag]:
        return iter(self.tags)

    def __contains__(self, tag_id: object) -> bool:
        return tag_id in self._index

    def index(self, tag_id: str) -> int:
        return self._index[tag_id]

    def get(self, tag_id: str) -> Tag | None:
        i = self._index.get(tag_id)
        return None if i is None else self.tags[i]

    def search_prefix(self, query: str, limit: int = 20) -> list[Tag]:
        """Tags whose label, or a word of it, starts with ``query`` (case-insensitive); most used first."""
        q = normalise_label(query)
        if not q:
            return []
        hits = [
            t for t in self.tags
            if normalise_label(t.label).startswith(q)
            or any(w.startswith(q) for w in re.split(r"[\s,()/-]+", normalise_label(t.label)))
        ]
        hits.sort(key=lambda t: (not normalise_label(t.label).startswith(q), -t.usage, t.label))
        return hits[:limit]

    # -- building and loading -------------------------------------------------

    @classmethod
    def from_records(cls, records: Iterable[CatalogueRecord]) -> Vocabulary:
        """Every tag the catalogue uses, with its group, area and usage count; sorted by id."""
        usage: Counter[str] = Counter()
        seen: dict[str, Tag] = {}
        areas: dict[str, str] = {}
        for record in records:
            areas.update(record.group_areas)
            for tag in record.metadata.tags:
                usage[tag.id] += 1
                if tag.id not in seen:
                    seen[tag.id] = Tag(id=tag.id, label=tag.label or tag.id, group=tag.group)
        tags = [
            replace(t, area=areas.get(t.group or ""), usage=usage[t.id])
            for t in sorted(seen.values(), key=lambda t: (len(t.id), t.id))
        ]
        return cls(tags)

    def to_csv(self, path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for t in self.tags:
                writer.writerow([t.id, t.label, t.group or "", t.area or "", t.usage])

    @classmethod
    def from_csv(cls, path: Path) -> Vocabulary:
        """CSV with a header; ``id`` and ``label`` are required, ``group``, ``area``, ``usage`` optional."""
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"id", "label"} - set(reader.fieldnames or [])
            if missing:
                raise ArttagError(f"{path}: missing columns {sorted(missing)}", path=str(path))
            tags = []
            for line, row in enumerate(reader, start=2):
                if not row.get("id") or not row.get("label"):
                    raise ArttagError(f"{path} line {line}: empty id or label", path=str(path), line=line)
                tags.append(Tag(
                    id=row["id"], label=row["label"], group=row.get("group") or None,
                    area=row.get("area") or None, usage=int(row.get("usage") or 0),
                ))
        return cls(tags)

    @classmethod
    def from_skos(cls, path: Path, lang: str = "en") -> Vocabulary:
        """SKOS in any RDF syntax rdflib reads (Turtle ``.ttl``, RDF/XML ``.rdf``/``.xml``/``.skos``,
        N-Triples, JSON-LD; chosen by the file's suffix, RDF/XML when unknown).

        Each ``skos:Concept`` without narrower concepts is a tag: its id is its ``skos:notation``
        (so a thesaurus can name the ids the catalogue uses) or else its URI; its label the
        ``prefLabel`` in ``lang`` (else an untagged one, else any); its ``broader`` concept's label
        is the group, and that concept's broader the area. Concepts with narrower ones are groups
        and areas, not tags.
        """
        import rdflib
        from rdflib.namespace import RDF, SKOS
        from rdflib.util import guess_format

        graph = rdflib.Graph()
        fmt = "xml" if path.suffix.lower() in (".skos", ".rdf", ".owl") else (guess_format(str(path)) or "xml")
        try:
            graph.parse(str(path), format=fmt)
        except Exception as exc:  # noqa: BLE001 - rdflib raises many kinds; all mean "not readable SKOS"
            raise ArttagError(f"{path}: not readable as SKOS ({fmt}): {type(exc).__name__}: {exc}",
                              path=str(path)) from exc
        concepts = set(graph.subjects(RDF.type, SKOS.Concept))
        broader: dict[object, object] = {}
        for child, parent in graph.subject_objects(SKOS.broader):
            broader.setdefault(child, parent)
        for parent, child in graph.subject_objects(SKOS.narrower):
            broader.setdefault(child, parent)
        concepts |= set(broader) | set(broader.values())

        def label(node: object) -> str | None:
            found = {}
            for value in graph.objects(node, SKOS.prefLabel):  # type: ignore[arg-type]
                found.setdefault(getattr(value, "language", None) or "", str(value).strip())
            return found.get(lang) or found.get("") or next(iter(sorted(found.items())), (None, None))[1] or None

        parents = set(broader.values())
        tags = []
        for node in concepts - parents:
            text = label(node)
            if not text:
                continue
            notation = next(iter(sorted(str(n) for n in graph.objects(node, SKOS.notation))), None)  # type: ignore[arg-type]
            group = broader.get(node)
            area = broader.get(group) if group is not None else None
            tags.append(Tag(id=notation or str(node), label=text,
                            group=label(group) if group is not None else None,
                            area=label(area) if area is not None else None))
        if not tags:
            raise ArttagError(f"{path}: no SKOS concept with a prefLabel", path=str(path))
        return cls(sorted(tags, key=lambda t: (len(t.id), t.id)))


def load_vocabulary(path: Path) -> Vocabulary:
    """A thesaurus file: CSV (``.csv``, :meth:`Vocabulary.from_csv`) or SKOS (anything else,
    :meth:`Vocabulary.from_skos`)."""
    if not path.exists():
        raise ArttagError(f"vocabulary file not found: {path}", path=str(path))
    return Vocabulary.from_csv(path) if path.suffix.lower() == ".csv" else Vocabulary.from_skos(path)
