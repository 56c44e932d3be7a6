"""`python cleanup_runs.py --keep-active-lineage` from the repository root; see mission_gym/scripts/cleanup.py."""

import sys

from mission_gym.scripts.cleanup import main

if __name__ == "__main__":
    sys.exit(main())
