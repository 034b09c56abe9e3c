"""The curation processor (`arttag curate`): ``tags.feedback.v1`` in, ``tags.decisions.v1`` out."""
