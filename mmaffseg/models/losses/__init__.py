# Copyright (c) mmaffseg contributors. All rights reserved.
from .feature_affinity_loss import FeatureAffinityLoss, feature_affinity_loss  # noqa: F401
from .npair_l2_loss import (NPairL2Loss, npair_l2_pair_loss,  # noqa: F401
                            sample_segment_pixels)
from .reconstruction_loss import ReconstructionMSELoss, masked_mse_loss  # noqa: F401
from .context_prior_loss import (ContextPriorLoss, affinity_one_hot,  # noqa: F401
                                 context_prior_loss, context_prior_loss_materialised)
from .affinity_pair_loss import AffinityPairLoss, affinity_pair_loss  # noqa: F401
from .instance_embedding_loss import (InstanceEmbeddingLoss, instance_embedding_loss,  # noqa: F401,E501
                                      instance_size_weights, sample_instance_points)
