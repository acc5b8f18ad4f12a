"""``segment --dicom-out`` and ``diagnose --dicom-out`` on a phantom study exported as DICOM: the
SEG's frames decoded onto the T1 grid equal the NIfTI masks voxel for voxel, the SR holds the
answer and the volumes, both read back with highdicom and pydicom, both pass dciodvfy, both carry
the study's patient identity (and nothing else that mrparotid writes does)."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_results import (decode_seg, dciodvfy_errors, image_files, tiny_classifier,
                           trained_segmenter)

from mrparotid.cli.main import main
from mrparotid.data.phantom_dicom import write_phantom_study
from mrparotid.io.files import read_image

pytestmark = pytest.mark.slow        # trains a tiny segmenter once per session (about 20 s)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_classifier(tmp_path_factory), trained_segmenter(tmp_path_factory)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_phantom_study(tmp_path_factory.mktemp("study") / "PAT7", patient_id="PAT7",
                               seed=3, slices=24, diagnosis="malignant")


def test_segment_dicom_out_frames_equal_the_nifti_masks(models, study, tmp_path):
    import highdicom as hd

    _, segmenter = models
    assert main(["segment", str(study.folder), "--checkpoint", str(segmenter), "--out",
                 str(tmp_path / "auto"), "--dicom-out", str(tmp_path / "dcm"), "-q"]) == 0
    seg_path = tmp_path / "dcm" / "PAT7" / "SEG.dcm"
    gland = sitk.ReadImage(str(tmp_path / "auto" / "PAT7" / "parotid_auto.nii.gz"))
    assert gland.GetSize() == read_image(study.folder / "T1").GetSize()
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "auto" / "PAT7" / "tumour_auto.nii.gz")))
    decoded = decode_seg(seg_path, gland, image_files(study.folder / "T1"))
    labels = sitk.GetArrayFromImage(gland)
    assert set(decoded) == {"Right parotid gland", "Left parotid gland", "Tumour"}
    assert np.array_equal(decoded["Right parotid gland"] + 2 * decoded["Left parotid gland"], labels)
    assert np.array_equal(decoded["Tumour"], tumour) and tumour.any()

    seg = hd.seg.segread(seg_path)
    t1 = pydicom.dcmread(study.files["T1"][0], stop_before_pixels=True)
    assert seg.SegmentationType == "BINARY"
    assert (seg.PatientID, str(seg.PatientName), seg.StudyInstanceUID) == \
        (t1.PatientID, str(t1.PatientName), t1.StudyInstanceUID)
    refs = {str(r.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence
            for r in s.ReferencedInstanceSequence}
    assert refs == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                    for f in study.files["T1"]}                     # instance by instance
    for item in seg.SegmentSequence:
        assert item.SegmentAlgorithmType == "AUTOMATIC" and item.SegmentDescription.startswith("automatic")
        algo = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algo.AlgorithmName == "mrparotid segmenter" and algo.AlgorithmVersion
        assert "best.ckpt" in str(algo.AlgorithmParameters)
        code = item.SegmentedPropertyTypeCodeSequence[0]
        assert (code.CodingSchemeDesignator, code.CodeValue) in {("SCT", "45289007"), ("SCT", "108369006")}
    assert "SYNTHETIC" in seg.SeriesDescription and "not a medical device" in seg.ContentDescription
    assert dciodvfy_errors(seg_path) == []


def test_diagnose_dicom_out_sr_holds_the_answer_and_volumes(models, study, tmp_path):
    import highdicom as hd

    checkpoint, segmenter = models
    assert main(["diagnose", str(study.folder), "--checkpoint", str(checkpoint), "--segmenter",
                 str(segmenter), "--dicom-out", str(tmp_path / "dcm"), "--json",
                 str(tmp_path / "r.json"), "-q"]) == 0
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    sr_path, seg_path = tmp_path / "dcm" / "PAT7" / "SR.dcm", tmp_path / "dcm" / "PAT7" / "SEG.dcm"
    sr = hd.sr.srread(sr_path)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    volumes = {str(g.tracking_identifier): g.get_measurements()[0].value for g in groups}
    t1 = read_image(study.folder / "T1")
    voxel = float(np.prod(t1.GetSpacing()))
    decoded = decode_seg(seg_path, t1, image_files(study.folder / "T1"))
    for label, key in (("Right parotid gland", "parotid gland right"),
                       ("Left parotid gland", "parotid gland left")):
        assert volumes[key] == pytest.approx(decoded[label].sum() * voxel, abs=0.1)
    tumour_keys = [k for k in volumes if k.startswith("tumour")]
    assert tumour_keys and sum(volumes[k] for k in tumour_keys) == \
        pytest.approx(decoded["Tumour"].sum() * voxel, abs=0.2)
    assert all(g.referenced_segment is not None for g in groups)

    (patient,) = sr.content.get_image_measurement_groups()
    evaluations = {q.name.meaning: q.value for q in patient.get_qualitative_evaluations()}
    answer, rule = evaluations["mrparotid answer"], evaluations["Diagnosis by the slice rule (Xia et al. 2021)"]
    assert (answer.value if answer.scheme_designator == "99MRPAROTID" else answer.meaning) in (
        report["answer"], "Malignant tumor of salivary gland", "Pleomorphic adenoma")
    assert rule.value == {"malignant": "255072001", "pleomorphic_adenoma": "8360001"}.get(
        report["diagnosis"], report["diagnosis"][:16])
    (p,) = [m for m in patient.get_measurements() if m.name.value == "111047"]
    assert p.value == pytest.approx(report["p_malignant"])
    t1_uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in study.files["T1"]}
    decisive = {str(i.referenced_sop_instance_uid) for i in patient.source_images}
    assert decisive and decisive <= t1_uids
    texts = [str(item.TextValue) for item in pydicom.dcmread(sr_path).ContentSequence
             if item.ValueType == "TEXT"]
    assert any("not a medical device" in t for t in texts) and any("SYNTHETIC" in t for t in texts)
    assert sr.PatientID == "PAT7" and "SYNTHETIC" in sr.SeriesDescription
    assert "PHANTOM" not in (tmp_path / "r.json").read_text(encoding="utf-8")   # JSON: no name
    assert dciodvfy_errors(sr_path) == [] and dciodvfy_errors(seg_path) == []


def test_a_nifti_t1_with_dicom_out_is_refused_in_one_line(models, study, tmp_path, capsys):
    folder = tmp_path / "NIFTI1"
    folder.mkdir()
    for role in ("T1", "CE-T1", "T2"):
        files = [str(p) for p in sorted(study.files[role])]
        sitk.WriteImage(sitk.ReadImage(files), str(folder / f"{role}.nii.gz"))
    checkpoint, segmenter = models
    for argv in (["segment", str(folder), "--checkpoint", str(segmenter), "--out", str(tmp_path / "a")],
                 ["diagnose", str(folder), "--checkpoint", str(checkpoint), "--segmenter", str(segmenter)]):
        capsys.readouterr()
        assert main([*argv, "--dicom-out", str(tmp_path / "dcm")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "T1.nii.gz" in err[0] and "not a DICOM series" in err[0]
    assert not (tmp_path / "a").exists() and not (tmp_path / "dcm").exists()    # before inference
