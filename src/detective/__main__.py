from detective.ui.cli import main

raise SystemExit(main())
