"""Names shared by every stage: slice classes, patient diagnoses and input channels."""

from __future__ import annotations

#: Slice classes, in the model's output order.
CLASSES: tuple[str, ...] = ("no_tumour", "pleomorphic_adenoma", "warthin", "malignant")

#: Patient diagnoses a manifest may carry (every class but ``no_tumour``).
DIAGNOSES: tuple[str, ...] = CLASSES[1:]

#: Input channels, in their fixed order. Any non-empty subset keeps this order.
CHANNELS: tuple[str, ...] = ("T1", "CE-T1", "T2", "mask")

#: The three MR series (the channels that are images, not masks).
SERIES: tuple[str, ...] = CHANNELS[:3]

#: Patient-level outcome when no tumour slice is predicted.
NO_TUMOUR_FOUND = "no_tumour_found"


def parse_channels(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse a channel selection such as ``"T1,T2"`` into fixed-order channel names.

    Letter case and the aliases ``CE_T1``, ``T1C``, ``T1CE``, ``T1+C`` and ``parotid`` are accepted.

    >>> parse_channels("t2,T1")
    ('T1', 'T2')
    """
    from mrparotid.errors import ConfigError

    items = text.split(",") if isinstance(text, str) else list(text)
    aliases = {"T1": "T1", "T1W": "T1", "CE-T1": "CE-T1", "CE_T1": "CE-T1", "CET1": "CE-T1",
               "T1C": "CE-T1", "T1CE": "CE-T1", "T1+C": "CE-T1", "T2": "T2", "T2W": "T2",
               "MASK": "mask", "PAROTID": "mask", "GLAND": "mask"}
    chosen = set()
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"channel {item!r} is not a channel name: choose from "
                              f"{', '.join(CHANNELS)} (e.g. --channels T1,CE-T1,T2,mask; in "
                              "YAML quote a name that holds ':')")
        key = item.strip().upper()
        if not key:
            continue
        if key not in aliases:
            raise ConfigError(f"unknown channel {item.strip()!r}: choose from {', '.join(CHANNELS)} "
                              "(e.g. --channels T1,CE-T1,T2,mask)")
        chosen.add(aliases[key])
    if not chosen:
        raise ConfigError("empty channel selection: name at least one of " + ", ".join(CHANNELS))
    return tuple(c for c in CHANNELS if c in chosen)
