"""Binary segmentation with ADA (thesis ch. 3): ``task=segmentation``.

The pieces, one module each: ``unet`` (the thesis's U-Net, 3.2.3), ``data`` (image and mask tensors of any
dataset with object masks, the embedded synthetic benchmark by default) and ``scgm`` (the Spinal Cord Grey Matter
challenge), ``augment`` (Table 2 on image and mask together), ``metrics`` (Table 1: DSC, HSD, TPR, TNR, PPV, and
the soft Dice loss), ``robustness`` (Alg. 2), ``ada`` (Alg. 1 and Eq. 3.2-3.4 with the summed foreground output as
the target), ``task`` (which models, methods and settings segment) and ``train`` (the protocol: standard epochs,
then one fork per attribution method, with checkpoints, resume and ``metrics.json``).
"""
