# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_pair_loss import AffinityPairLoss, affinity_pair_loss  # noqa: F401
from .context_prior_loss import (  # noqa: F401
                            ContextPriorLoss,
                            affinity_one_hot,
                            context_prior_loss,
                            context_prior_loss_materialised,
)
from .feature_affinity_loss import FeatureAffinityLoss, feature_affinity_loss  # noqa: F401
from .instance_embedding_loss import (  # noqa: F401,E501
                            InstanceEmbeddingLoss,
                            instance_embedding_loss,
                            instance_size_weights,
                            sample_instance_points,
)
from .npair_l2_loss import NPairL2Loss, npair_l2_pair_loss, sample_segment_pixels  # noqa: F401
from .reconstruction_loss import ReconstructionMSELoss, masked_mse_loss  # noqa: F401
