"""The ``arttag`` command line: verbs over the model's life and the stream's operations."""
