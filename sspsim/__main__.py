"""``python -m sspsim`` is the ``sspsim`` command."""

from sspsim.cli import main

raise SystemExit(main())
