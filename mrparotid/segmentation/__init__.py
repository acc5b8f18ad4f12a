"""Segmentation stage: automatic parotid gland and tumour masks from the three series.

In: a study on the T1 grid (:class:`mrparotid.data.grid.Study`; the gland may be missing). Its
series are normalised per patient over the whole volume and resampled in-plane to a fixed spacing
(slices.py). Out: gland (1 right, 2 left) and tumour masks on the T1 grid (:class:`AutoMasks`,
infer.py), written on the original T1 geometry with an overlay montage (write.py).

config.py (configs/segment.yaml) → cache.py (slices per patient) → dataset.py → network.py (MONAI
UNet) + lit_module.py (Dice + BCE) → fit.py (``segment fit``) → infer.py (``load_segmenter``,
``segment_study``) → postprocess.py (nnU-Net style) → metrics.py (Dice, HD95 mm) → write.py.
"""
