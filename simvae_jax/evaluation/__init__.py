"""Evaluation of frozen representations; functions take plain arrays."""
