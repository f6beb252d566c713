"""Binary segmentation with ADA (thesis ch. 3): ``task=segmentation``.

The pieces, one module each: ``data`` (image and mask tensors of any dataset with object masks, the embedded
synthetic benchmark by default, or the Spinal Cord Grey Matter challenge, ``rrx.data.scgm``), ``augment`` (Table 2
on image and mask together), ``metrics`` (Table 1: DSC, HSD, TPR, TNR, PPV, and the soft Dice loss), ``robustness`` (Alg. 2), ``ada`` (Alg. 1 and Eq. 3.2-3.4 with the summed foreground output as
the target), ``task`` (which models, methods and settings segment) and ``train`` (the protocol: standard epochs,
then one fork per attribution method, with checkpoints, resume and ``metrics.json``). The thesis's U-Net (3.2.3)
is ``model=unet`` of the model registry (``rrx.models.unet``).
"""
