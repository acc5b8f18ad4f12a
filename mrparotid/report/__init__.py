"""Report stage: the evidence a radiologist checks.

In: a patient's diagnosis dict (slices, probabilities, heat maps) and its crops. Out: a montage
PNG and a self-contained HTML page per patient (plus an index page for a cohort).
"""
