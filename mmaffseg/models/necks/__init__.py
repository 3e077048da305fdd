# Copyright (c) mmaffseg contributors. All rights reserved.
from .hanet_neck import HANetNeck  # noqa: F401
