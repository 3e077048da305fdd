#!/usr/bin/env bash
# One-command GPU check for a maintainer with a CUDA device (nothing in mmaffseg had run on a
# GPU when this was written). From the repository root:
#
#     bash tools/analysis_tools/gpu_check.sh [ITERS]        # ITERS defaults to 50
#
# It runs, and says as it goes what it runs:
#   1. the CUDA-gated tests (--amp training of every family for a few iterations, SyncBN in a
#      2-process run when 2 GPUs exist, pseudo labels GPU vs CPU, the CUDA random walk, the
#      guided filter) and the CPU autocast / device-placement tests;
#   2. tools/train.py --amp on every family's quick-start config for ITERS iterations on the
#      synthetic data (generated on first use), last logged losses printed;
#   3. the GPU rows of the benchmarks: the context prior loss before/after its batched
#      rewrite (steps/s, with the CPNet training step; also its CPU row), the random walk, the
#      context modules vs their mmseg baselines, DSRL and instance-embedding inference on cuda;
#   4. the GPU rows of the benchmark suite: tools/benchmark_suite.py --amp --channels-last on
#      every method of the synthetic suite (--tiny, 4 iterations each, then evaluation), and
#      the training step of every method of the Cityscapes suite (512x1024 crops, batch 2,
#      random batches: no dataset needed) in fp32, --amp and --amp --channels-last: step time,
#      peak memory, AMP speed-up (benchmark.py train-step);
#   5. pseudo-label throughput on the GPU: tools/make_pseudo_labels.py on the 60 selection
#      images of the synthetic WSSS quick-start (untrained weights; CAM, walk, dense CRF on the
#      CPU cores), wall time and images per second.
# Logs go to work_dirs/gpu_check/; the summary at the end lists every step and its exit code.
set -u
ITERS=${1:-50}
OUT=work_dirs/gpu_check
mkdir -p "$OUT"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "gpu_check: torch.cuda.is_available() is False; this script needs a CUDA device." >&2
    exit 2; }
python -c "import torch; print('gpu_check on', torch.cuda.get_device_name(0), 'x', torch.cuda.device_count(), '| torch', torch.__version__, '| CUDA', torch.version.cuda)"
SUMMARY=()
step() {  # step NAME CMD...: run, log, remember the exit code
    local name=$1; shift
    echo; echo "=== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    SUMMARY+=("$(printf '%-40s exit %s' "$name" "$rc")")
}

step tests-gpu python -m pytest -q -rs tests/test_tools/test_gpu_amp.py \
    "tests/test_wsss/test_random_walk.py::test_walk_on_gpu_matches_cpu" \
    tests/test_configs/test_quickstart_mixed_precision.py tests/test_models/test_mixed_precision.py \
    tests/test_tools/test_benchmark_suite_amp.py tests/test_apis/test_training_precision.py
step tests-cuda-skips python -m pytest -q -rs -k "gpu or cuda" tests

for cfg in \
    configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py \
    configs/hanet/hanet_r18-d16_quickstart_synthetic-128x256.py \
    configs/spnet/spnet_r50-d8-slim_quickstart_synthetic-128x256.py \
    configs/cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py \
    configs/deeplabv1/deeplabv1_vgg16-slim-largefov_quickstart_synthetic-128x256.py \
    configs/deeplabv2/deeplabv2_r18-d8_quickstart_synthetic-128x256.py \
    configs/dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py \
    configs/semantic_features/semantic-features_r18_quickstart_synthetic-128x256.py \
    configs/instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py \
    configs/psa/psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py; do
    name=amp-$(basename "$cfg" .py)
    step "$name" python tools/train.py "$cfg" --amp --work-dir "$OUT/$name" \
        --cfg-options train_cfg.max_iters="$ITERS" train_cfg.val_interval="$ITERS" \
        default_hooks.checkpoint.interval="$ITERS" default_hooks.logger.interval=10
    grep -h '"loss"' "$OUT/$name"/*/vis_data/scalars.json 2>/dev/null | tail -1
done
# The AffinityNet quick-start trains on labels made by the CAM step (configs/psa/README.md);
# its --amp run on ground-truth labels is in the tests above.

step bench-cp-loss-cuda python tools/analysis_tools/benchmark.py host-syncs --device cuda --model
step bench-cp-loss-cpu python tools/analysis_tools/benchmark.py host-syncs --device cpu --model
step bench-random-walk-cuda python tools/analysis_tools/benchmark.py random-walk --device cuda
step bench-context-modules-cuda python tools/analysis_tools/benchmark.py context-modules --device cuda
step bench-dsrl-cuda python tools/analysis_tools/benchmark.py dsrl --device cuda
step bench-instance-embedding-cuda python tools/analysis_tools/benchmark.py instance-embedding --device cuda

# the suite's --amp / --channels-last on CUDA, every method end to end (training, evaluation)
step suite-amp-tiny python tools/benchmark_suite.py synthetic --tiny --amp --channels-last \
    --data-root data/synthetic_cityscapes --work-dir "$OUT/suite_amp_tiny" --seeds 0 --overwrite
# per-method step time, peak memory and AMP speed-up at the Cityscapes protocol's crops
step bench-train-step-cuda python tools/analysis_tools/benchmark.py train-step --suite cityscapes \
    --device cuda --modes fp32 amp amp+cl --out "$OUT/train_step_cuda.json"

# pseudo-label throughput: untrained CAM and AffinityNet weights, 60 images, wall time
PSA=configs/psa
step pl-checkpoints bash -c "python tools/analysis_tools/save_untrained_checkpoint.py \
    $PSA/psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py $OUT/pl_cam.pth && \
    python tools/analysis_tools/save_untrained_checkpoint.py \
    $PSA/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py $OUT/pl_aff.pth"
start=$(date +%s%N)
step pseudo-labels-cuda python tools/make_pseudo_labels.py \
    $PSA/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py \
    --cam-checkpoint "$OUT/pl_cam.pth" --aff-checkpoint "$OUT/pl_aff.pth" \
    --out "$OUT/pseudo_labels" --overwrite
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "pseudo labels on $(python -c 'import torch; print(torch.cuda.get_device_name(0))'): 60 images in ${ms} ms (start-up included), $(python -c "print(f'{60000 / max($ms, 1):.2f}')") images/s"

echo; echo "=== gpu_check summary (logs in $OUT/)"
printf '%s\n' "${SUMMARY[@]}"
