"""Pipeline `edges`: the Sobel edge map of each photograph (one datum per file, glob /*).

Reads $CAIRN_PFS/images/<name>, writes $CAIRN_PFS/out/<stem>.png (the edge map at
full size) and $CAIRN_PFS/out/<stem>.pgm, a small preview (photograph | edges) in
plain PGM (P2, one pixel row per line) so that shell tools can tile previews.
"""

import os
from pathlib import Path

import numpy as np
from skimage import color, filters, io, transform, util

PREVIEW = 96  # preview cell height in pixels; the cell is twice as wide

pfs = Path(os.environ.get("CAIRN_PFS", "/pfs"))
out = pfs / "out"

for src in sorted(p for p in (pfs / "images").rglob("*") if p.is_file()):
    image = util.img_as_float(io.imread(src))
    if image.ndim == 3 and image.shape[-1] == 4:
        image = color.rgba2rgb(image)
    gray = color.rgb2gray(image) if image.ndim == 3 else image
    edges = filters.sobel(gray)
    edges = edges / max(float(edges.max()), 1e-12)
    io.imsave(out / f"{src.stem}.png", util.img_as_ubyte(edges), check_contrast=False)

    cells = [transform.resize(x, (PREVIEW, PREVIEW), anti_aliasing=True) for x in (gray, edges)]
    preview = (np.clip(np.hstack(cells), 0, 1) * 255).round().astype(np.uint8)
    with open(out / f"{src.stem}.pgm", "w") as f:
        f.write(f"P2\n{2 * PREVIEW} {PREVIEW}\n255\n")
        f.writelines(" ".join(map(str, row)) + "\n" for row in preview)
    print(f"{src.name}: {gray.shape[1]}x{gray.shape[0]} -> {src.stem}.png, {src.stem}.pgm")
