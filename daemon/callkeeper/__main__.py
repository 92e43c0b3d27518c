from callkeeper.cli import main

raise SystemExit(main())
