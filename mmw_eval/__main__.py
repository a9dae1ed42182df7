import sys

from mmw_eval.cli import main

sys.exit(main())
