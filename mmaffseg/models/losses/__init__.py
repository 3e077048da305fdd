# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_pair_loss import AffinityPairLoss, affinity_pair_loss
from .context_prior_loss import (
    ContextPriorLoss,
    affinity_one_hot,
    context_prior_loss,
    context_prior_loss_materialised,
)
from .feature_affinity_loss import FeatureAffinityLoss, feature_affinity_loss
from .instance_embedding_loss import (
    InstanceEmbeddingLoss,
    instance_embedding_loss,
    instance_size_weights,
    sample_instance_points,
)
from .npair_l2_loss import NPairL2Loss, npair_l2_pair_loss, sample_segment_pixels
from .reconstruction_loss import ReconstructionMSELoss, masked_mse_loss

__all__ = [
    'AffinityPairLoss',
    'ContextPriorLoss',
    'FeatureAffinityLoss',
    'InstanceEmbeddingLoss',
    'NPairL2Loss',
    'ReconstructionMSELoss',
    'affinity_one_hot',
    'affinity_pair_loss',
    'context_prior_loss',
    'context_prior_loss_materialised',
    'feature_affinity_loss',
    'instance_embedding_loss',
    'instance_size_weights',
    'masked_mse_loss',
    'npair_l2_pair_loss',
    'sample_instance_points',
    'sample_segment_pixels',
]
