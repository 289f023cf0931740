"""Write scikit-learn's bundled breast cancer data set as a CSV whose target is text: `malignant` or `benign`.

python examples/tabular/make_data.py /tmp/cancer/breast_cancer.csv
"""

import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer


def write(path: Path) -> Path:
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda name: name.replace(" ", "_"))
    frame["diagnosis"] = [bunch.target_names[code] for code in frame.pop("target")]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "breast_cancer.csv")))
