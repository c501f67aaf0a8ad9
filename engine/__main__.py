"""`python -m engine --run-dir DIR`: the training worker (engine.worker);
`python -m engine pretrain ...`: the pretraining job (engine.jobs.pretrain)."""
import sys

if sys.argv[1:2] == ["pretrain"]:
    from .jobs.pretrain import main

    sys.exit(main(sys.argv[2:]))

from .worker import main

sys.exit(main())
