# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_net import AffinityNet  # noqa: F401
from .cam_classifier import CAMClassifier  # noqa: F401
from .crf_refine import CRFRefineSegmentor  # noqa: F401
from .dsrl import DSRLEncoderDecoder, SSSRUpsample, baseline_model_cfg, strip_training_branches  # noqa: F401
from .feature_embedding import FeatureEmbeddingSegmentor  # noqa: F401
from .hanet_encoder_decoder import HANetEncoderDecoder  # noqa: F401
from .instance_embedding import InstanceEmbeddingSegmentor  # noqa: F401
