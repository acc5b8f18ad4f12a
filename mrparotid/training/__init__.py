"""Training runs. In: a config and a manifest. Out: a run folder (``run_dir``: resolved config,
saved split, checkpoints, predictions, summary) for one fit (``fit``), one per channel subset
(``ablate``), or one per cross-validation fold (``cv``)."""
