"""Distributed hyperparameter search for XANE(3): Optuna spaces, a Ray Tune trainable
wrapping the one ``xane3`` training loop, Parquet result tables and W&B runs per trial.

``python -m search.run --help`` lists the spaces; ``search.runner.run_trials`` runs a
fixed list of override dicts (ablations) through the same trainable and tables.
"""
