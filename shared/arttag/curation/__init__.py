"""Curation: feedback folded into decided tags per artwork (docs/curation.md).

``tags.feedback.v1`` is the truth; the decisions are a projection of it that a replay
rebuilds exactly. Each rule is a plain function in its own module: ``rules`` (the
parameters), ``state`` (what the fold keeps), ``fold`` (one event into the state),
``decisions`` (an artwork's state into a ``TagDecisionsChanged``).
"""
