"""Scoring. In: a predictions CSV (one slice a row, ``predictions``). Out: slice- and patient-level
metrics with confidence intervals (``metrics``, ``stats``), figures (``plots``), a Markdown report
(``report``), and the evaluation folder that ``evaluate`` writes (``evaluate``)."""
