from arttag_cli.main import main

raise SystemExit(main())
