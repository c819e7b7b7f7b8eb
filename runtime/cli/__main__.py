import sys

from tether.runtime.cli import main

sys.exit(main())
