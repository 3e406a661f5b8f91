import sys

from lora_playground.cli import main

sys.exit(main())
