from mmw_tasks.cli import main

raise SystemExit(main())
