"""The patient decision, in one place. In: slice probabilities (uncalibrated softmax, (n, 4) in
``CLASSES`` order) with the tumour slices marked. Out: the paper's rule (``rule``), the soft vote,
and the answer a clinic acts on: a temperature (``temperature``), a length-free p(malignant)
(``aggregate``), two cuts chosen for a stated sensitivity and specificity (``cuts``), frozen in a
versioned record (``record``) that ``fit`` chooses on validation patients, ``apply`` turns into
one patient's answer, and ``score`` turns into tables on test patients. Numpy (and scipy) only."""
