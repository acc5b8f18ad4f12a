"""From a trained model to a patient answer. In: uint8 crops and a loaded checkpoint. Out: slice
probabilities (``predict``), the paper's patient rule (``decide``), and the per-patient report of
``mrparotid diagnose`` (``diagnose``). Nothing here imports Lightning, so ``diagnose`` starts
fast."""
