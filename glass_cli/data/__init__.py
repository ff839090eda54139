"""Labelled images for training and measuring: folder and manifest data sets, splits and
per-source sampling (``datasets``), and the re-encodes, resizes and crops that training and
evaluation apply to a decoded picture (``augment``). Below both training and evaluation."""
