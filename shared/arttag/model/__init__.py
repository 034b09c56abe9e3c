"""The model: bundles, the ensemble over the scorers, explanations, training, the Tagger contract."""
