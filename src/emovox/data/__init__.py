"""Package data: the bundled models (``default_model``, ``compare_model``) and the RAVDESS
fold file. Owns no code and may import nothing."""
