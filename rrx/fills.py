"""One vocabulary for what removed pixels are filled with, in every group that removes pixels: IPHA's C (Eq. 7.1:
the analysis's ``analysis.fill``, ADA's ``method.ipha_fill``, ``attribution_map(..., ipha_fill=)``; the names
``rrx.attributions.ipha.IPHA_FILLS`` takes) and U Analysis's patches (``analysis.fill``; the names
``rrx.analyses.u_analysis.U_FILLS`` takes). Images are in [0, 1] pixel space, before the model's normalisation; a
random fill is drawn once per image (the same noise wherever that image's pixels are removed).

A name means one fill wherever it is taken: the two Gaussian fills are two draws, so they have two names."""

FILLS = {
    "zeros": "0 in every channel (black)",
    "ones": "1 in every channel (white)",
    "gaussian": "N(0, 1) per pixel and channel, not clamped: most values fall outside [0, 1] (U Analysis; the "
    "thesis's code, np.random.normal(0.0, 1.0))",
    "grey_gaussian": "N(0.5, 0.25^2) per pixel and channel, clamped to [0, 1] (IPHA; the thesis gives no parameters: "
    "these keep about 95 % of the draws in [0, 1] before clamping)",
    "normalisation_mean": "the normalisation mean colour per channel: the model's own (model.mean), else (the "
    "analyses) the dataset's",
    "image_mean": "the image's own mean colour per channel",
    "region_mean": "the removed region's (U Analysis: patch's) own mean colour per channel",
}
# IPHA's C as an older rrx spelled it (analysis.constant, method.ipha_constant, attribution_map's ipha_constant) ->
# today's name. For IPHA's values only: U Analysis's names were already today's (its ``gaussian`` is N(0, 1), IPHA's
# old ``gaussian`` is ``grey_gaussian``). The library functions of IPHA accept these; configs take today's names.
OLD_SPELLINGS = {"zero": "zeros", "one": "ones", "gaussian": "grey_gaussian", "mean": "normalisation_mean"}
