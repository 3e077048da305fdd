# Copyright (c) mmaffseg contributors. All rights reserved.
from .features import guided_filter, pca_basis, visualize_embedding
from .local_visualizer import AffSegLocalVisualizer, instance_caption, instance_colors
from .mmseg_guards import install_mmseg_guards, unpaintable_prediction

__all__ = [
    'guided_filter', 'pca_basis', 'visualize_embedding', 'AffSegLocalVisualizer',
    'instance_caption', 'instance_colors', 'install_mmseg_guards', 'unpaintable_prediction'
]
