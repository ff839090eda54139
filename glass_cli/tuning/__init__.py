"""Hyperparameter search: the search space and the Optuna study around the trainer."""
