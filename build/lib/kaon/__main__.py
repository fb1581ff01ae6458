import sys

from kaon.cli.main import main

sys.exit(main())
