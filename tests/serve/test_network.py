"""The node's network ends, in this process and without models: the Storage SCP keeps MR
instances from allowed AE titles on disk and refuses the others at association; the sender
C-STOREs with retries and backoff, resumes where it stopped, and works over TLS."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pydicom
import pytest
from serve_node import Pacs, free_port, send_study

from mrparotid.data.phantom_dicom import write_phantom_study
from mrparotid.errors import ConfigError
from mrparotid.serve.config import load_serve_config, parse_destination
from mrparotid.serve.queue import StudyQueue, instance_name, study_key
from mrparotid.serve.scp import start_scp
from mrparotid.serve.sender import SendError, send_with_retries, sent_marker, store_files
from mrparotid.serve.tls import client_context, server_context


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_phantom_study(tmp_path_factory.mktemp("net") / "S", patient_id="NET1", seed=1, slices=4)


def node_cfg(out, port: int, **tls) -> dict:
    short = {"node.port": port, "node.allow": ["MODALITY1"], "send.to": "PACS@127.0.0.1:104",
             "out": str(out), "node.host": "127.0.0.1"}
    overrides = [f"--tls.{k}={v}" for k, v in tls.items()]
    return load_serve_config(None, overrides, short)


@pytest.fixture()
def scp(tmp_path):
    queue = StudyQueue(tmp_path / "out")
    cfg = node_cfg(tmp_path / "out", free_port())
    lines: list[str] = []
    server = start_scp(cfg, queue, lines.append)
    yield queue, server.server_address[1], lines
    server.shutdown()


def test_allowed_mr_instances_are_kept_on_disk(scp, study):
    queue, port, _ = scp
    files = study.files["T1"]
    assert send_study(files, port) == [0] * len(files)
    kept = queue.folder("incoming") / study_key(study.study_uid)
    assert sorted(p.name for p in kept.iterdir()) == sorted(
        instance_name(pydicom.dcmread(f).SOPInstanceUID) for f in files)
    for f in files:                              # each stored whole, with its file meta
        ds = pydicom.dcmread(f)
        back = pydicom.dcmread(kept / instance_name(ds.SOPInstanceUID))
        assert back.PixelData == ds.PixelData and back.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert send_study(files[:1], port) == [0]    # a resent instance replaces itself
    assert len(list(kept.iterdir())) == len(files)


def test_other_calling_ae_titles_and_non_mr_objects_are_refused(scp, study, tmp_path):
    queue, port, lines = scp
    assert send_study(study.files["T1"][:1], port, calling_ae="INTRUDER") == []
    assert any("INTRUDER" in line for line in lines)
    assert send_study(study.files["T1"][:1], port, called_ae="SOMEONE") == []
    ct = pydicom.dcmread(study.files["T1"][0])
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"   # CT
    ct.save_as(tmp_path / "ct.dcm")
    from pynetdicom import AE

    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    assoc = ae.associate("127.0.0.1", port, ae_title="MRPAROTID")
    assert not assoc.is_established or not assoc.accepted_contexts   # no CT context
    if assoc.is_established:
        assoc.release()
    assert list(queue.folder("incoming").iterdir()) == []


def test_sender_retries_with_backoff_then_fails(tmp_path):
    f = tmp_path / "SEG.dcm"
    shutil.copy(write_phantom_study(tmp_path / "s", slices=3).files["T1"][0], f)
    waits = []
    with pytest.raises(SendError, match="after 3 attempts"):
        send_with_retries([f], parse_destination(f"PACS@127.0.0.1:{free_port()}"), calling_ae="ME",
                          timeout_s=2, retries=2, backoff_s=0.01, stop=threading.Event(),
                          on_retry=lambda k, why, delay: waits.append(delay))
    assert waits == [0.01, 0.02]
    assert not sent_marker(f).exists()


def test_sender_stores_and_does_not_send_twice(tmp_path):
    pacs = Pacs(tmp_path / "pacs")
    try:
        seg = tmp_path / "SEG.dcm"
        ds = pydicom.dcmread(write_phantom_study(tmp_path / "s", slices=3).files["T1"][0])
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
        ds.save_as(seg)
        dest = parse_destination(f"PACS@127.0.0.1:{pacs.port}")
        assert store_files([seg], dest, calling_ae="MRPAROTID", timeout_s=10) == 1
        assert store_files([seg], dest, calling_ae="MRPAROTID", timeout_s=10) == 0
        assert len(pacs.received) == 1 and sent_marker(seg).exists()
    finally:
        pacs.close()


def test_tls_on_both_sides(tmp_path, study):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (needed to make test certificates)")
    subj = "/CN=localhost"
    run = lambda *a: subprocess.run([openssl, *a], check=True, capture_output=True, timeout=60)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"),
        "-out", str(tmp_path / "ca.pem"), "-days", "2", "-subj", "/CN=test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "node.key"),
        "-out", str(tmp_path / "node.csr"), "-subj", subj)
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(tmp_path / "node.csr"), "-CA", str(tmp_path / "ca.pem"),
        "-CAkey", str(tmp_path / "ca.key"), "-CAcreateserial", "-out", str(tmp_path / "node.pem"),
        "-days", "2", "-extfile", str(tmp_path / "ext.cnf"))
    tls = {"enabled": "true", "cert": tmp_path / "node.pem", "key": tmp_path / "node.key",
           "ca": tmp_path / "ca.pem"}
    cfg = node_cfg(tmp_path / "out", free_port(), **tls)
    queue = StudyQueue(tmp_path / "out")
    server = start_scp(cfg, queue, [].append, server_context(cfg["tls"]))
    try:
        dest = parse_destination(f"MRPAROTID@127.0.0.1:{server.server_address[1]}")
        f = study.files["T1"][0]
        assert store_files([f], dest, calling_ae="MODALITY1", timeout_s=10,
                           tls=client_context(cfg["tls"])) == 1
        assert len(list(queue.folder("incoming").rglob("*.dcm"))) == 1
        with pytest.raises(SendError):                        # plain DICOM to a TLS port: refused
            store_files([_copy(f, tmp_path)], dest, calling_ae="MODALITY1", timeout_s=3)
    finally:
        server.shutdown()


def _copy(f, tmp_path):
    target = tmp_path / "plain.dcm"
    shutil.copy(f, target)
    return target


def test_config_refusals():
    for short, words in (({"node.allow": [], "send.to": "P@h:1", "out": "o"}, "node.allow is empty"),
                         ({"node.allow": ["M"], "send.to": "nohost", "out": "o"}, "not AE@host:port"),
                         ({"node.allow": ["M"], "send.to": "P@h:1"}, "--out"),
                         ({"node.allow": ["THIS-TITLE-IS-TOO-LONG"], "send.to": "P@h:1", "out": "o"},
                          "not an AE title")):
        with pytest.raises(ConfigError, match=words):
            load_serve_config(None, None, short)
    assert parse_destination("PACS@[::1]:104").host == "::1"
    assert load_serve_config(None, None, {"node.allow": ["A,B"], "send.to": "P@h:1", "out": "o"}
                             )["node"]["allow"] == ["A", "B"]
