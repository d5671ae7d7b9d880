#!/usr/bin/env bash
# Issue 19's GPU checks as one command for a lent GPU machine (the `device` tool's `run`), sized
# to end inside one 10-minute call on an H100/H200, writing everything under $OUT.
#
# That machine has torch, transformers, accelerate, safetensors, peft and psutil but not
# diffusers, platformdirs or importlib_metadata, and no network. Before the call, here, in the
# repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl \
#       diffusers==0.42.1 platformdirs==4.14.9 importlib_metadata
# then: run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600).
# Each part has its own time limit, so a slow part costs only itself; the JSON files and the log
# come back in $OUT. Run it again with PARTS="memory compile" for the parts that did not fit.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PARTS=${PARTS:-"sync fast memory compile"}
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 SDSTUDIO_HOME=${SDSTUDIO_HOME:-/tmp/sdstudio-home}
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/log.txt"; }
part() { local limit=$1; shift; timeout "$limit" "$@" 2>&1 | tee -a "$OUT/log.txt"; }

log "machine"
part 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
part 60 python3 -c "import torch, diffusers; print(torch.__version__, diffusers.__version__, torch.cuda.get_device_name())"
bench="python3 benchmarks/bench_gpu.py --device cuda"
for p in $PARTS; do
    case $p in
    sync)  # which samplers make the host wait per step (eager and compiled)
        log "host syncs per step"
        part 60 python3 benchmarks/check_sync_gpu.py --size 512 --steps 6
        part 150 python3 benchmarks/check_sync_gpu.py --size 512 --steps 6 --compile ;;
    fast)  # the fast path against diffusers: every case, batch 1 and 4
        log "fast path"
        part 200 $bench --cases sd15-512-20 sd15-512-50 sdxl-1024-30 --modes fast \
            --batches 1 4 --repeats 2 --json "$OUT/fast.json" ;;
    memory)  # peak VRAM per rung of the ladder, SD 1.5 and SDXL at batch 1
        log "memory ladder"
        part 150 $bench --cases sd15-512-20 sdxl-1024-30 --modes sliced tiled offload \
            --batches 1 --repeats 1 --json "$OUT/memory.json"
        part 60 python3 benchmarks/bench_memory.py --device cuda --size 1024 ;;
    compile)  # compiled mode: the "SD 1.5, 512², 50 steps in under 1 s" target
        log "compiled mode"
        part 200 $bench --cases sd15-512-50 --modes compile --batches 1 --repeats 3 \
            --json "$OUT/compile.json" ;;
    esac
done
log "done"
