# The project's head: the baseline's FCN head with an SPM gate after each of its two convs.
#   PYTHONPATH=$PWD python tools/train.py \
#       projects/sp_fcn_head/configs/sp-fcn_r18-d16_quickstart_synthetic-128x256.py
_base_ = ['./fcn_r18-d16_quickstart_synthetic-128x256.py']
custom_imports = dict(
    imports=['mmaffseg', 'projects.sp_fcn_head.sp_fcn_head'], allow_failed_imports=False)
model = dict(decode_head=dict(type='SPFCNHead'))
