"""Leave-source-out cross-validation: measure a training recipe on sources it never saw.

Folds hold out whole groups of images. By default (``CvOptions.group_by="source"``) a group
is the manifest's ``source``: the gallery, repository or pipeline an image came from, whose
images share an encoder, sizes, post-processing and content. With ``group_by="family"`` it is
the ``family`` column (a generator family for fakes, a camera make or collection for reals),
which is finer but lets one pipeline's images sit on both sides of a fold. Fake groups and
real groups are each spread over N folds; fold i trains on every image outside fold i's
groups (the data's own train/val split is ignored) and is scored on its own groups' images.
A group never straddles two folds, so each score is a score on an unseen source.

    from glass_cli.evaluation.cv.options import CvOptions
    from glass_cli.evaluation.cv.run import run_cv

    result = run_cv(TrainConfig(data="train-v1/manifest.csv", name="lite0", epochs=8), CvOptions(folds=3))
    result.objective            # mean over folds of the AUROC averaged over the real sizes

Each fold is trained with ``training.trainer.Trainer`` and scored with ``evaluate.predict``, so every
held-out image gets the score ``glass scan`` would give it. Reals are scored as stored and
with the long side shrunk to each of ``CvOptions.real_sizes`` (never enlarged), fakes as
stored: small, processed real photos are the ones a detector trained on camera originals
wrongly flags. Both classes are also scored re-encoded as JPEG and downscaled.

The fold is scored with its run's ``last`` checkpoint: the trainer's ``best`` is picked on
the held-out families (they are the run's validation split), which would let the test fold
choose the epoch.

What a cross-validation writes to ``RUNS_DIR/cv/NAME/``:
- ``plan.json``: data, training config, options and the fold assignment, written first;
- ``fold-I.csv``: the fold's manifest (absolute paths; split ``train`` or ``heldout``);
- ``fold-I/``: the fold's training run, and ``fold-I/heldout.json`` with its numbers and
  every held-out file's scores once it has been scored;
- ``cv.json``: every fold's numbers with their mean and spread (rewritten after each fold)
  and ``cv.png``, the per-fold AUROC by condition.

Running the same cross-validation again skips scored folds, scores trained ones and resumes
an interrupted training from its last finished epoch. ``CvOptions.only_folds`` runs some
folds now and leaves the rest for a later call; a scored fold needs only its
``fold-I/heldout.json`` (not its checkpoint), so folds run in different sessions or on
different machines are joined by copying ``plan.json`` and those files into one folder.

The package: ``options`` (CvOptions, file names), ``folds`` (who is held out where),
``scoring`` (conditions, per-file scores, fold numbers), ``calibration`` (the leave-source-out
threshold and the calibrated copy of a model, from the fold runs or from a saved cv.json) and ``run`` (run_cv and its results).
"""
