"""Package data: the bundled model (``default_model``; ``compare_model`` is no longer
bundled) and the RAVDESS fold file. Owns no code and may import nothing."""
