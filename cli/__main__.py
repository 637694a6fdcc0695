from dmzwatch.cli import main

raise SystemExit(main())
