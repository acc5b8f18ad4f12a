"""A training run killed with SIGKILL in the middle of an epoch, for the resume tests.

    run_killed("mrparotid.models.lit_module:SliceClassifier", 1, SCRIPT, *args)

runs ``SCRIPT`` (Python that reads its arguments from ``sys.argv[1:]``) in a child process in
which that LightningModule's ``training_step`` kills the process on the second batch of epoch 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

KILLER = """
import importlib, os, signal
_cls = getattr(importlib.import_module({module!r}), {name!r})
_step = _cls.training_step
def _killing_step(self, batch, batch_idx):
    if self.current_epoch == {epoch} and batch_idx == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return _step(self, batch, batch_idx)
_cls.training_step = _killing_step
"""


def run_killed(module_class: str, kill_epoch: int, script: str, *args: str) -> None:
    """Run ``script`` with ``args`` in a child process whose ``module_class``
    (``"package.module:Class"``) kills it with SIGKILL on batch 1 of epoch ``kill_epoch``; fail
    the test (with the child's stderr) unless it died that way."""
    module, name = module_class.split(":")
    code = KILLER.format(module=module, name=name, epoch=int(kill_epoch)) + textwrap.dedent(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, encoding="utf-8", env=env,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
