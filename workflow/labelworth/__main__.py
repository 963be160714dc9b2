import sys

from labelworth.cli import main

sys.exit(main())
