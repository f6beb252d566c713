"""Reading models (thesis ch. 7, seeds 002 and 004): the metrics of the interpretability analyses.

So far the localisation metrics with object masks and ObEy's weighted IoU (``rrx.analyses.localisation``); the
``rrx analyze`` command over them is issue 12's next step.
"""
