"""The ``fairness-pipeline`` command."""
