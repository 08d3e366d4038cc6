"""`python -m reasonlab.compare`: runs launch/compare.py (reasonlab.launch.compare)."""

from reasonlab.launch.compare import main

if __name__ == "__main__":
    main()
