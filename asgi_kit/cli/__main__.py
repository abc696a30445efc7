import sys

from asgi_kit.cli import main

sys.exit(main())
