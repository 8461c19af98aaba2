"""The only package that imports Ray: actor wrappers, runners, supervisor, metrics."""
