"""`python -m reasonlab.study`: runs launch/study.py (reasonlab.launch.study)."""

from reasonlab.launch.study import main

if __name__ == "__main__":
    main()
