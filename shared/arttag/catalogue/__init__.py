"""The catalogue: reading exports, the train/dev split, artwork text, the tag vocabulary."""
