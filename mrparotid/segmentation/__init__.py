"""Segmentation stage: automatic parotid gland and tumour masks from the three series.

In: a study on the T1 grid (series normalised as for the crops). Out: gland and tumour masks on
the T1 grid (and written on the original T1 geometry), for patients whose folder lacks contours.
"""
