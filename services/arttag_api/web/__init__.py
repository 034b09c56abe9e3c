"""The review desk: server-rendered pages at ``/review`` (docs/review.md) and the API docs with local assets."""
