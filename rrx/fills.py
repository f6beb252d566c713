"""One vocabulary for what removed pixels are filled with, in every group that removes pixels: IPHA's C (Eq. 7.1,
``analysis.fill`` and ADA's ``method.ipha_fill``) and U Analysis's patches (``analysis.fill``)."""

FILLS = {
    "zeros": "0 in every channel (black)",
    "ones": "1 in every channel (white)",
    "gaussian": "noise drawn from N(0, 1) per pixel, clipped to [0, 1]",
    "normalisation_mean": "the dataset's normalisation mean per channel",
    "image_mean": "the image's own mean per channel",
    "region_mean": "the removed region's own mean per channel",
}
# spellings an older rrx wrote (IPHA's constant), read as today's
OLD_SPELLINGS = {"zero": "zeros", "one": "ones", "mean": "normalisation_mean"}
