"""Curation: feedback folded into decided tags per artwork (docs/curation.md).

``tags.feedback.v1`` is the truth; the decisions are a projection of it that a replay
rebuilds exactly. Each idea is plain functions in its own module: ``rules`` (the
parameters), ``feedback`` (reading the events), ``state`` (what the fold keeps), ``fold``
(one event into the state), ``consensus`` (the public's weighted vote), ``trust`` (a
contributor's weight), ``decisions`` (an artwork's state into a ``TagDecisionsChanged``).
"""
