# Copyright (c) mmaffseg contributors. All rights reserved.
from .features import guided_filter, pca_basis, visualize_embedding

__all__ = ['guided_filter', 'pca_basis', 'visualize_embedding']
