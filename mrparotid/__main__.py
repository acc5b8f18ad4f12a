import sys

from mrparotid.cli import main

sys.exit(main())
