"""Training: labelled data sets, augmentation and the trainer."""
