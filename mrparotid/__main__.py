import sys

from mrparotid.cli.main import main

sys.exit(main())
