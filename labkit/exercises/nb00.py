"""Notebook 00 (start here) is the map of the course: it has no exercises."""

EXERCISES = []
