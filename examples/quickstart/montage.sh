#!/usr/bin/env bash
# Pipeline `montage`: tiles every photograph's preview into one picture, 4 per row.
# One datum sees both inputs: $CAIRN_PFS/images (the photographs, for names and order)
# and $CAIRN_PFS/edges (the previews edges.py wrote). Bash and coreutils only.
set -euo pipefail
pfs=${CAIRN_PFS:-/pfs}
cols=4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

names=()
for img in "$pfs"/images/*; do
  stem=$(basename "${img%.*}")
  if [[ ! -f "$pfs/edges/$stem.pgm" ]]; then
    echo "no preview for $img in edges; is edges up to date?" >&2
    exit 1
  fi
  names+=("$stem")
done
read -r w h < <(sed -n 2p "$pfs/edges/${names[0]}.pgm")
zeros=$(printf '0 %.0s' $(seq "$w"))
for ((y = 0; y < h; y++)); do echo "${zeros% }"; done > "$tmp/blank"

n=${#names[@]}
rows=$(((n + cols - 1) / cols))
{
  printf 'P2\n%d %d\n255\n' $((w * cols)) $((h * rows))
  for ((r = 0; r < rows; r++)); do
    cells=()
    for ((c = 0; c < cols; c++)); do
      i=$((r * cols + c))
      if ((i < n)); then
        tail -n +4 "$pfs/edges/${names[$i]}.pgm" > "$tmp/cell$c"
      else
        cp "$tmp/blank" "$tmp/cell$c"
      fi
      cells+=("$tmp/cell$c")
    done
    paste -d ' ' "${cells[@]}"
  done
} > "$pfs/out/montage.pgm"

for ((i = 0; i < n; i++)); do
  echo "row $((i / cols + 1)) column $((i % cols + 1)): ${names[$i]}"
done > "$pfs/out/montage.txt"
echo "tiled $n previews into ${cols}x${rows} cells of ${w}x${h}"
