"""The faust-streaming worker: artwork events in, explained tag suggestions out."""
