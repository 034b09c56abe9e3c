"""Tag quality: the catalogue audit, live data-quality monitoring, ranking metrics."""
