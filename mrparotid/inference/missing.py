"""Which series a patient must have for a checkpoint, and which it lacks.

A checkpoint trained without series dropout needs every MR series among its channels; a missing
one is refused (:class:`~mrparotid.errors.CheckpointError`). One trained with
``augment.series_dropout`` (``LoadedModel.series_flags``) answers without some of them: their
planes stay zero and their present flags 0, and the report names them. T1 is needed in every case,
as the reference grid every other series is resampled onto. A patient with none of the series the
model uses is an :class:`~mrparotid.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Iterable

from mrparotid.constants import SERIES
from mrparotid.errors import CheckpointError, InputError, MissingSeriesError
from mrparotid.io.manifest import PatientCase
from mrparotid.models.checkpoint import LoadedModel


def model_series(loaded: LoadedModel) -> tuple[str, ...]:
    """The MR series among the checkpoint's channels, in fixed order."""
    return tuple(c for c in loaded.channels if c in SERIES)


def read_series(loaded: LoadedModel) -> tuple[str, ...]:
    """The series read from a patient folder for the checkpoint: those its crops hold
    (:func:`mrparotid.data.crops.plane_series` of its preprocess record); other series in the
    folder are never read."""
    from mrparotid.data.crops import plane_series

    return plane_series(loaded.meta["preprocess"])


def required_series(loaded: LoadedModel) -> tuple[str, ...]:
    """The series a patient folder must hold (besides T1, always required): every series of the
    model, or none when the model was trained with series dropout."""
    return () if loaded.series_flags else model_series(loaded)


def missing_series_error(err: MissingSeriesError, case: PatientCase, loaded: LoadedModel
                         ) -> CheckpointError | InputError:
    """The error to raise when the patient folder lacks ``err.role``."""
    if loaded.series_flags:            # only T1, the reference grid, is then required
        return InputError(f"{err.message}: T1 is the reference grid every series is resampled onto, "
                          "so even a model trained with series dropout needs it",
                          patient=case.patient_id, path=err.path, fix=err.fix)
    return CheckpointError(f"{err.message}, but the checkpoint was trained on "
                           f"{','.join(loaded.channels)} without series dropout",
                           patient=case.patient_id, path=err.path,
                           fix="add the series, or use a checkpoint trained without it "
                               "(mrparotid ablate --channels ...) or with --augment.series_dropout 0.3")


def missing_series(case: PatientCase, loaded: LoadedModel, available: Iterable[str]) -> tuple[str, ...]:
    """The model's series the patient lacks (``available``: the series read for the patient).

    Raises
    ------
    CheckpointError
        A series is missing and the model was trained without series dropout.
    InputError
        The patient has none of the series the model uses.
    """
    have = set(available)
    wanted = model_series(loaded)
    missing = tuple(s for s in wanted if s not in have)
    if missing and not loaded.series_flags:
        raise CheckpointError(f"no {', '.join(missing)} series found, but the checkpoint was trained "
                              f"on {','.join(loaded.channels)} without series dropout",
                              patient=case.patient_id, path=case.patient_dir,
                              fix="add the series, or use a checkpoint trained with "
                                  "--augment.series_dropout 0.3")
    if wanted and len(missing) == len(wanted):
        raise InputError(f"none of the series the model uses ({', '.join(wanted)}) was found "
                         f"(the patient has {', '.join(sorted(have)) or 'no series'})",
                         patient=case.patient_id, path=case.patient_dir,
                         fix=f"add {' or '.join(wanted)} (see the README's data layout), or use a "
                             "checkpoint trained on the series the patient has")
    return missing
