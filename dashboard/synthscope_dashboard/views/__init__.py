"""Thin views over `AppState`: each builds its widgets once and redraws when the state changes."""
