"""Hyperparameter search: the search space (``space``), one trial (``objective``) and the Optuna
study around them (``study``; its options and results in ``options``)."""
