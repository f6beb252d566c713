"""The Model Inspector (thesis 7.3): question one model on one image, as a web app (``rrx inspect``).

The science is here, as library functions tested without the page; ``app.py`` only lays out Streamlit widgets
and calls them.

- ``transforms``: texture (Gaussian, shot, impulse, speckle noise) and structure (patch, horizontal-strip,
  vertical-strip shuffle) transforms, seeded (7.3.1).
- ``views``: the figures and numbers of each module: predictions before and after a transform (7.3.1),
  attributions and U Analysis (7.3.2), signal-only and context-only predictions, SNR and background-only
  transforms (7.3.3).
- ``masks``: the signal selection (rectangle, circle, polygon) as an object mask.
- ``images``: uploads of any size and mode, and the dataset's images with their masks and variations.
- ``model``: the checkpoint or off-the-shelf model with its class names.
- ``saving``: a view as PNG + JSON in the run folder; ``server``: the ``rrx inspect`` command.
"""
