"""``mrparotid serve``: a DICOM node beside PACS (:mod:`mrparotid.serve`), and ``--status``."""

from __future__ import annotations

import argparse

SERVE_HELP = """\
A DICOM node beside PACS. It listens as a Storage SCP, keeps each MR study on disk as it arrives
(only from the calling AE titles of --allow), and when no instance has arrived for --idle-s
seconds it runs segment + diagnose on the study and sends a DICOM SEG (gland and tumour masks)
and a DICOM SR (TID 1500: answer, p(malignant), volumes) to --send-to by C-STORE, with retries.
A study that cannot be processed or sent is kept in OUT/failed/ with its reason. A node killed at
any moment and started again processes every received study exactly once. Research software,
not a medical device. The SEG and SR carry the study's patient identity (PACS files them by it);
the log and the status name studies by a key only.

  OUT/incoming/  OUT/processing/  OUT/outbox/  OUT/done/  OUT/failed/  OUT/serve.log

example:
  mrparotid serve --port 11112 --ae-title MRPAROTID --allow MODALITY1 --send-to PACS@10.0.0.5:104 \\
      --checkpoint runs/cls/checkpoints/best.ckpt --segmenter runs/seg/checkpoints/best.ckpt \\
      --out /var/lib/mrparotid --idle-s 30
  storescu -aet MODALITY1 -aec MRPAROTID localhost 11112 +sd +r study/    # send a study (dcmtk)
  mrparotid serve --status --out /var/lib/mrparotid

Defaults come from configs/serve.yaml; --config FILE and dotted overrides (--send.retries 3,
--tls.enabled true --tls.cert node.pem --tls.key node.key --tls.ca ca.pem) go on top.
SIGTERM stops it cleanly.
"""

#: Short option → dotted config key.
SHORT = {"port": "node.port", "ae_title": "node.ae_title", "allow": "node.allow",
         "send_to": "send.to", "idle_s": "node.idle_s", "checkpoint": "models.checkpoint",
         "segmenter": "models.segmenter", "out": "out", "roles": "node.roles"}


def add_parsers(subparsers) -> None:
    """Register the ``serve`` sub-command on an argparse subparsers object."""
    p = subparsers.add_parser("serve", description=SERVE_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              help="DICOM node: receive studies, send SEG + SR to PACS")
    p.add_argument("--port", type=int, help="TCP port to listen on (default 11112)")
    p.add_argument("--ae-title", metavar="AE", help="our AE title (default MRPAROTID)")
    p.add_argument("--allow", action="append", metavar="AE", help="calling AE title allowed to "
                   "send studies (repeatable, or comma-separated); others are refused")
    p.add_argument("--send-to", metavar="AE@HOST:PORT", help="where SEG and SR go, e.g. PACS@pacs:104")
    p.add_argument("--idle-s", type=float, metavar="S", help="a study is complete after S seconds "
                   "without an instance (default 30)")
    p.add_argument("--checkpoint", metavar="CKPT", help="classifier (default: newest run under runs/)")
    p.add_argument("--segmenter", metavar="SEG", help="segmenter (default: newest run under runs/)")
    p.add_argument("--roles", metavar="FILE", help="series-roles YAML (see configs/dicom_roles.yaml)")
    p.add_argument("--out", "-o", metavar="DIR", help="queue, results, failed studies, log")
    p.add_argument("--config", "-c", metavar="FILE", help="YAML over configs/serve.yaml")
    p.add_argument("--status", action="store_true", help="print the state of --out (queue, last "
                   "results, failures) and exit")
    p.set_defaults(func=cmd_serve)


cmd_takes_extra = True   # the CLI passes dotted overrides (--send.retries 3) to cmd_serve


def cmd_serve(args, extra: list[str]) -> int:
    from mrparotid.errors import ConfigError

    if args.status:
        if not args.out:
            raise ConfigError("--status needs --out DIR", fix="e.g. mrparotid serve --status --out DIR")
        from mrparotid.serve.status import status, status_text

        print(status_text(status(args.out)))
        return 0
    from mrparotid.serve.config import load_serve_config
    from mrparotid.serve.node import Node
    from mrparotid.serve.pipeline import load_models

    cfg = load_serve_config(args.config, extra, {key: getattr(args, name) for name, key in SHORT.items()})
    models = load_models(cfg["models"]["checkpoint"], cfg["models"]["segmenter"])
    return Node(cfg, models).run()
