"""Measuring a model: metrics, evaluation of labelled data, calibration, cross-validation."""
