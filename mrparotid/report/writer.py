"""``diagnose --explain`` / ``--html``: heat maps into each patient's report, the pages written.

One :class:`ReportWriter` per command: it checks up front that the model has a stage to hook and
that the page folder may be written, then takes one patient at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrparotid.inference.diagnose import PatientEvidence
from mrparotid.inference.explain import explain_patient, format_cams, target_layer
from mrparotid.models.checkpoint import LoadedModel


class ReportWriter:
    """Adds Grad-CAM summaries to reports; with ``html_dir``, writes each patient's page there
    (and :meth:`finish` an index of several).

    Raises
    ------
    CheckpointError
        The model has no convolutional stage to hook (before any patient is read).
    OutputError
        ``html_dir`` is a file, or a non-empty folder without ``overwrite``.
    """

    def __init__(self, loaded: LoadedModel, *, html_dir: str | Path | None = None,
                 overwrite: bool = False):
        from mrparotid.report.html import prepare_out_dir
        from mrparotid.report.model_card import model_card

        target_layer(loaded.model, str(loaded.path))
        self.loaded = loaded
        self.html_dir = prepare_out_dir(html_dir, overwrite=overwrite) if html_dir else None
        self.card = model_card(loaded)
        self.pages: list[Path] = []

    def __call__(self, evidence: PatientEvidence, report: dict) -> np.ndarray:
        """Heat maps of one patient (n, H, W); ``report`` gains its ``cam`` rows, and the page is
        written when there is a page folder."""
        cams = explain_patient(evidence, self.loaded, report)
        if self.html_dir is not None:
            from mrparotid.report.html import write_patient_report

            self.pages.append(write_patient_report(self.html_dir, evidence, report, cams,
                                                   self.loaded, self.card))
        return cams

    @staticmethod
    def text(report: dict) -> str:
        """The heat-map lines of the text report."""
        return format_cams(report)

    def finish(self, reports: list[dict], bad: list, *, quiet: bool = False) -> Path | None:
        """With a page folder and several patients (diagnosed or not), write ``index.html``;
        print where the pages are unless ``quiet``. Returns the index path, if written."""
        from mrparotid.io.paths import error_line
        from mrparotid.report.html import write_index

        if self.html_dir is None:
            return None
        index = None
        if len(reports) + len(bad) > 1:       # files named relative to the page folder
            index = write_index(self.html_dir, reports, self.card,
                                [error_line(e, self.html_dir) for e in bad])
        if not quiet:
            where = index or (self.pages[0] if self.pages else self.html_dir)
            print(f"report pages: {where} ({len(self.pages)} patient page(s))")
        return index
