from detective.cli import main

raise SystemExit(main())
