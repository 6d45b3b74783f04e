"""`python -m worker`: see worker.main."""

from worker.main import main

main()
