"""``evaluate --checkpoint`` refuses overrides it cannot honour instead of ignoring them."""

from __future__ import annotations

import pytest

from mrparotid.cli.evaluate_checkpoint import check_evaluate_overrides
from mrparotid.errors import ConfigError


@pytest.mark.parametrize("extra", [["--rule.malignant_min_slices", "5"], ["--refer.target_sensitivity", "0.9"],
                                   ["--data.channels", "[T1,T2]"], ["--model.name", "tiny_resnet"]])
def test_an_override_the_checkpoint_cannot_honour_is_refused(extra):
    with pytest.raises(ConfigError, match="cannot honour"):
        check_evaluate_overrides(extra)


def test_decision_targets_and_run_settings_are_honoured():
    assert check_evaluate_overrides(["--decision.target_sensitivity", "0.9"]) is True
    assert check_evaluate_overrides(["--trainer.precision", "32-true", "--data.batch_size", "8"]) is False
