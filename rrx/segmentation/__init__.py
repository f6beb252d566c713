"""Binary segmentation with ADA (thesis ch. 3): the science of ``task=segmentation`` (``rrx.tasks.segmentation``).

The pieces, one module each: ``data`` (image and mask tensors of any dataset with object masks, the embedded
synthetic benchmark by default, or the Spinal Cord Grey Matter challenge, ``rrx.data.scgm``), ``augment`` (Table 2
on image and mask together), ``metrics`` (Table 1: DSC, HSD, TPR, TNR, PPV, and the soft Dice loss), and ``ada``
(Alg. 1 and Eq. 3.2-3.4 with the summed foreground output as the target, and the robustness set of Alg. 2). The
thesis's U-Net (3.2.3) is ``model=unet`` of the model registry (``rrx.models.unet``). The protocol (standard
epochs, then one fork per attribution method) is the task's phases, trained by the one loop of ``rrx.train``.
"""
