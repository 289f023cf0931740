"""The job tests reuse the cloud tests' fake deployed stack (`cloud_support`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "cloud"))
