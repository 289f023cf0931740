"""`python -m training`: the container entrypoint."""

from training.main import main

raise SystemExit(main())
