# Copyright (c) mmaffseg contributors. All rights reserved.
from . import backbones, decode_heads, layers, losses, necks, segmentors  # noqa: F401
