"""Write scikit-learn's handwritten digits (1,797 8x8 images, bundled with scikit-learn,
no download) as one CSV: 64 pixel columns `pixel_0_0` ... `pixel_7_7` (0-16) and `target`.

    python3 make_data.py digits.csv
"""

import sys

from sklearn.datasets import load_digits

load_digits(as_frame=True).frame.to_csv(sys.argv[1], index=False)
