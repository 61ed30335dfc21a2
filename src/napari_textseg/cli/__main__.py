"""``python -m napari_textseg.cli``."""

import sys

from napari_textseg.cli import main

sys.exit(main())
