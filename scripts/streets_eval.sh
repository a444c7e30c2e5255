#!/usr/bin/env bash
# Score one checkpoint on the three public hold-outs at the given input sizes (one JSON per run):
#   scripts/streets_eval.sh CHECKPOINT NAME OUT_DIR DATA_DIR ["H W" ...]
# DATA_DIR as written by scripts/prepare_datasets.py (+ camvid/ in the SegNet layout). Sizes default to
# the model's own. Hold-outs: Cityscapes Frankfurt val (10 frames, 2048x1024), the 500-frame
# low-resolution Cityscapes val (256x512), CamVid drive 0006R0 (4:3, 480x360).
set -euo pipefail
ckpt=$1 name=$2 out=$3 data=$4; shift 4
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=("own")
mkdir -p "$out"
fornet() { "$(dirname "$0")/../.venv/bin/python" -m fornet_ros.cli "$@"; }  # this checkout's code
for size in "${sizes[@]}"; do
  opt=(); tag=own
  if [ "$size" != own ]; then read -r h w <<< "$size"; opt=(--input-size "$h" "$w"); tag=${h}x${w}; fi
  fornet eval --checkpoint "$ckpt" --dataset cityscapes --data-root "$data/cityscapes_fine" --split val \
    "${opt[@]}" --json > "$out/eval_${name}_frankfurt_${tag}.json"
  fornet eval --checkpoint "$ckpt" --dataset folder --data-root "$data/cityscapes_lowres" --split val \
    "${opt[@]}" --json > "$out/eval_${name}_cslowres_val_${tag}.json"
  fornet eval --checkpoint "$ckpt" --dataset camvid --data-root "$data/camvid" --split train --drives 0006R0 \
    "${opt[@]}" --json > "$out/eval_${name}_0006R0_${tag}.json"
  echo "$name $tag: $(python3 -c "import json,sys; print(*['%s %.3f' % (k, json.load(open(f))['miou']) for k, f in zip(('frankfurt', 'cs500', '0006R0'), sys.argv[1:])])" \
    "$out/eval_${name}_frankfurt_${tag}.json" "$out/eval_${name}_cslowres_val_${tag}.json" "$out/eval_${name}_0006R0_${tag}.json")"
done
