"""``GET /v1/tags`` (search by label: prefix, semantic or both) and ``GET /v1/tags/{tag_id}``."""

from __future__ import annotations

import logging
from typing import Any, Literal

from arttag.catalogue.vocabulary import Tag
from fastapi import APIRouter, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool

from arttag_api.deps import TaggerDep, VocabularyDep
from arttag_api.models import TagHitPublic, TagPublic, TagSearchPublic
from arttag_api.problems import problem_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/tags", tags=["tags"])


def _public(tag: Tag) -> dict[str, Any]:
    return {"id": tag.id, "label": tag.label, "group": tag.group, "area": tag.area, "usage": tag.usage}


@router.get("", response_model=TagSearchPublic, summary="Search the vocabulary by label",
            responses=problem_responses(401, 403, 422, 429, 503))
async def search_tags(
    vocabulary: VocabularyDep,
    tagger: TaggerDep,
    q: str = Query(min_length=1, max_length=200, description="Label or words to look for"),
    mode: Literal["prefix", "semantic", "both"] = Query(
        "both", description="prefix: labels starting with q; semantic: nearest tag texts by embedding"),
    limit: int = Query(20, ge=1, le=100),
) -> TagSearchPublic:
    hits: list[TagHitPublic] = []
    seen: set[str] = set()
    if mode in ("prefix", "both"):
        for tag in vocabulary.search_prefix(q, limit):
            hits.append(TagHitPublic(**_public(tag), match="prefix"))
            seen.add(tag.id)
    if mode in ("semantic", "both") and len(hits) < limit:
        # the encoder runs here: keep it off the event loop
        found = await run_in_threadpool(tagger.search_tags_semantic, q, limit)
        for tag, score in found:
            if tag.id not in seen and len(hits) < limit:
                hits.append(TagHitPublic(**_public(tag), match="semantic", score=float(score)))
                seen.add(tag.id)
    return TagSearchPublic(query=q, mode=mode, tags=hits)


@router.get("/{tag_id:path}", response_model=TagPublic, summary="One tag with its group, area and usage",
            responses=problem_responses(401, 403, 404, 422, 429, 503))
async def get_tag(vocabulary: VocabularyDep, tag_id: str = Path(min_length=1, max_length=500)) -> TagPublic:
    tag = vocabulary.get(tag_id)
    if tag is None:
        raise HTTPException(404, f"no tag with id {tag_id!r}")
    return TagPublic(**_public(tag))
