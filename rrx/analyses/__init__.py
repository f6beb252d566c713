"""Reading models (thesis ch. 7, seeds 002 and 004): the metrics of the interpretability analyses.

So far the metrics, batched in torch and cross-checked against Quantus in the tests: localisation with object masks
and ObEy's weighted IoU (``rrx.analyses.localisation``), and Focus on mosaics (``rrx.analyses.focus``). The
``rrx analyze`` command over them is issue 12's next step.
"""
