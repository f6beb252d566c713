"""Thesis Table 2: the ranges of the classic augmentations, stated once.

ADA's conventional data (``rrx.methods.ada``, Alg. 1 line 1) use the geometric ones; the segmentation protocol's
augmented copies (``rrx.segmentation.augment``) use all of them.
"""

ROTATION_DEG = 4.6  # rotation in [-4.6, 4.6] degrees
SHIFT = 0.03  # shift in [-3 %, 3 %] of the side, along each axis
SCALE = (0.98, 1.02)
CHANNEL_SHIFT = 0.17  # one value in [-0.17, 0.17] added to every channel
ELASTIC_ALPHA, ELASTIC_SIGMA = 30.0, 4.0  # elastic deformation (Simard et al. 2003)
