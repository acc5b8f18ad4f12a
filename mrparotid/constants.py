"""Names shared by every stage: slice classes, patient diagnoses and input channels."""

from __future__ import annotations

#: Slice classes, in the model's output order.
CLASSES: tuple[str, ...] = ("no_tumour", "pleomorphic_adenoma", "warthin", "malignant")

#: Patient diagnoses a manifest may carry (every class but ``no_tumour``).
DIAGNOSES: tuple[str, ...] = CLASSES[1:]

#: Input channels, in their fixed order. Any non-empty subset keeps this order. Beyond the
#: paper's T1, CE-T1 and T2: ``T2FS`` (fat-suppressed T2), ``DWI`` (the high-b diffusion image,
#: b about 1000 s/mm²), ``ADC`` (apparent diffusion coefficient, x 10⁻³ mm²/s) and ``DCE`` (one
#: dynamic contrast phase); ``mask`` is the parotid mask channel.
CHANNELS: tuple[str, ...] = ("T1", "CE-T1", "T2", "T2FS", "DWI", "ADC", "DCE", "mask")

#: Every MR series role a channel may name (the channels that are images, not masks).
SERIES: tuple[str, ...] = CHANNELS[:-1]

#: The paper's three series: what every prepared crop holds (plus any other series its channels
#: name), and the default channels.
PAPER_SERIES: tuple[str, ...] = SERIES[:3]

#: Series roles whose voxel values are physical quantities, normalised in their units (never by
#: percentiles): ADC in x 10⁻³ mm²/s.
QUANTITATIVE_SERIES: tuple[str, ...] = ("ADC",)

#: ``data.series_mask``: zero the MR series outside nothing, the gland or the tumour.
SERIES_MASK_CHOICES: tuple[str, ...] = ("none", "gland", "tumour")

#: Patient-level outcome when no tumour slice is predicted.
NO_TUMOUR_FOUND = "no_tumour_found"


def parse_channels(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse a channel selection such as ``"T1,T2"`` into fixed-order channel names.

    Letter case and the aliases ``CE_T1``, ``T1C``, ``T1CE``, ``T1+C``, ``T2_FS``, ``STIR``,
    ``DIFFUSION``, ``ADC_MAP`` and ``parotid`` are accepted.

    >>> parse_channels("t2,T1")
    ('T1', 'T2')
    """
    from mrparotid.errors import ConfigError

    items = text.split(",") if isinstance(text, str) else list(text)
    aliases = {"T1": "T1", "T1W": "T1", "CE-T1": "CE-T1", "CE_T1": "CE-T1", "CET1": "CE-T1",
               "T1C": "CE-T1", "T1CE": "CE-T1", "T1+C": "CE-T1", "T2": "T2", "T2W": "T2",
               "T2FS": "T2FS", "T2_FS": "T2FS", "T2-FS": "T2FS", "STIR": "T2FS",
               "DWI": "DWI", "DIFFUSION": "DWI", "TRACE": "DWI", "ADC": "ADC", "ADC_MAP": "ADC",
               "DCE": "DCE", "MASK": "mask", "PAROTID": "mask", "GLAND": "mask"}
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


def series_of_channels(channels) -> tuple[str, ...]:
    """The MR series a crop holds for ``channels``: the paper's three plus every other series the
    channels name, in :data:`SERIES` order (what is prepared; the model takes its channels from it).

    >>> series_of_channels(["T1", "ADC", "mask"])
    ('T1', 'CE-T1', 'T2', 'ADC')
    """
    named = parse_channels(channels)
    return tuple(s for s in SERIES if s in PAPER_SERIES or s in named)
