# Copyright (c) mmaffseg contributors. All rights reserved.
