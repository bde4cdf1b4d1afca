import sys

from warpsniff.cli import main

sys.exit(main())
