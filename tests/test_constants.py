"""Channel selections (mrparotid.constants.parse_channels) from the command line and from YAML."""

from __future__ import annotations

import pytest

from mrparotid.config import load_config
from mrparotid.constants import parse_channels
from mrparotid.errors import ConfigError


@pytest.mark.parametrize("value", [["T1", {"T": None}], ["T1", 2], ["T1", None], ["T1", ["T2"]]])
def test_a_channel_item_that_is_not_text_is_a_config_error(value):
    with pytest.raises(ConfigError) as info:
        parse_channels(value)
    assert "\n" not in str(info.value)


def test_yaml_item_read_as_a_mapping_is_a_config_error(tmp_path):
    """``[T1, T:]`` is a list whose second item YAML reads as the mapping {T: None}."""
    path = tmp_path / "config.yaml"
    path.write_text('data:\n  channels: [T1, "T":]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_valid_selections_still_parse():
    assert parse_channels(["t2", " T1 "]) == ("T1", "T2")
    assert parse_channels("t1c,mask") == ("CE-T1", "mask")
