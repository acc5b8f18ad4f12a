"""The SR reads the diagnose report defensively: answers are coded (SNOMED CT where a code exists,
the private 99MRPAROTID scheme otherwise, CodeValue at most 16 characters) and the operating
point comes from whichever field the report has, never invented."""

from __future__ import annotations

from mrparotid.dicom_out.sr import answer_code, decisive_rows, operating_point_text


def test_answer_codes():
    assert (answer_code("malignant").scheme_designator, answer_code("malignant").value) == ("SCT", "255072001")
    assert answer_code("pleomorphic_adenoma").value == "8360001"
    refer = answer_code("refer")
    assert refer.scheme_designator == "99MRPAROTID" and "radiologist" in refer.meaning
    long = answer_code("something_much_longer_than_sixteen")
    assert len(long.value) <= 16 and long.meaning == "something much longer than sixteen"


def test_operating_point_from_whichever_field_is_there():
    assert operating_point_text({"operating_point": {"text": "p >= 0.42 at sensitivity 0.95"}}) \
        == "p >= 0.42 at sensitivity 0.95"
    assert operating_point_text({"decision": {"operating_point": "not validated", "record": "none"}}) \
        == "not validated (decision record: none)"
    assert "0.3 <= p < 0.5" in operating_point_text({"refer_band": [0.3, 0.5]})
    assert operating_point_text({}) == "not stated by the diagnosis"


def test_decisive_rows_are_the_rule_class_slices():
    def row(k, pred_p):
        return {"index": k, "z_mm": float(k), "probs": dict(zip(
            ("no_tumour", "pleomorphic_adenoma", "warthin", "malignant"), pred_p))}

    rows = [row(1, (0.1, 0.1, 0.1, 0.7)), row(2, (0.1, 0.7, 0.1, 0.1)), row(3, (0.0, 0.1, 0.1, 0.8))]
    assert [r["index"] for r in decisive_rows({"diagnosis": "malignant", "slices": rows})] == [1, 3]
    assert decisive_rows({"slices": rows}) == []               # no diagnosis: nothing decided
