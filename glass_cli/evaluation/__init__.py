"""Measuring a model: evaluation of labelled data, calibration, cross-validation (the metrics
themselves are ``glass_cli.metrics``)."""
