"""Ablations as config diffs over the baseline, run by the same Ray runner as search."""
