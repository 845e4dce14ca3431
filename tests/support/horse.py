"""A plain RQ job for tests of the stack itself: it says which process runs it (the work-horse RQ forks),
then sleeps as a long migration would."""

import os
import time
from pathlib import Path


def record_pid_and_sleep(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
